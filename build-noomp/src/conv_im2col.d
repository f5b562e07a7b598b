build-noomp/src/conv_im2col.o: src/conv_im2col.c src/conv_fast.h \
 include/uakd/conv.h include/uakd/status.h
src/conv_fast.h:
include/uakd/conv.h:
include/uakd/status.h:
