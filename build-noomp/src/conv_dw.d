build-noomp/src/conv_dw.o: src/conv_dw.c src/conv_fast.h \
 include/uakd/conv.h include/uakd/status.h
src/conv_fast.h:
include/uakd/conv.h:
include/uakd/status.h:
