build-noomp/src/net_run.o: src/net_run.c src/layers_omp.h \
 src/net_internal.h include/uakd/net.h include/uakd/layers.h \
 include/uakd/rng.h include/uakd/status.h include/uakd/conv.h
src/layers_omp.h:
src/net_internal.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/status.h:
include/uakd/conv.h:
