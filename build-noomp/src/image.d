build-noomp/src/image.o: src/image.c include/uakd/image.h \
 include/uakd/status.h
include/uakd/image.h:
include/uakd/status.h:
