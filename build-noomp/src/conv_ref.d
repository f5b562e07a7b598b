build-noomp/src/conv_ref.o: src/conv_ref.c include/uakd/conv.h \
 include/uakd/status.h
include/uakd/conv.h:
include/uakd/status.h:
