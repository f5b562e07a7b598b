build-noomp/src/net.o: src/net.c src/net_internal.h include/uakd/net.h \
 include/uakd/layers.h include/uakd/rng.h include/uakd/status.h \
 include/uakd/conv.h
src/net_internal.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/status.h:
include/uakd/conv.h:
