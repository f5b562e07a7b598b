build-noomp/src/conv_dnnl.o: src/conv_dnnl.c src/conv_fast.h \
 include/uakd/conv.h include/uakd/status.h include/uakd/backend.h
src/conv_fast.h:
include/uakd/conv.h:
include/uakd/status.h:
include/uakd/backend.h:
