build-noomp/src/geom_basic.o: src/geom_basic.c include/uakd/geom.h \
 include/uakd/status.h
include/uakd/geom.h:
include/uakd/status.h:
