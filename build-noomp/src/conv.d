build-noomp/src/conv.o: src/conv.c include/uakd/backend.h \
 include/uakd/status.h include/uakd/conv.h src/conv_fast.h
include/uakd/backend.h:
include/uakd/status.h:
include/uakd/conv.h:
src/conv_fast.h:
