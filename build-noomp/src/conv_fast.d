build-noomp/src/conv_fast.o: src/conv_fast.c src/conv_fast.h \
 include/uakd/conv.h include/uakd/status.h include/uakd/backend.h
src/conv_fast.h:
include/uakd/conv.h:
include/uakd/status.h:
include/uakd/backend.h:
