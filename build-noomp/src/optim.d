build-noomp/src/optim.o: src/optim.c src/layers_omp.h \
 include/uakd/optim.h include/uakd/net.h include/uakd/layers.h \
 include/uakd/rng.h include/uakd/status.h
src/layers_omp.h:
include/uakd/optim.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/status.h:
