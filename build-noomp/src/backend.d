build-noomp/src/backend.o: src/backend.c include/uakd/backend.h \
 include/uakd/status.h
include/uakd/backend.h:
include/uakd/status.h:
