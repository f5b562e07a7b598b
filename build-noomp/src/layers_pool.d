build-noomp/src/layers_pool.o: src/layers_pool.c src/layers_omp.h \
 include/uakd/layers.h
src/layers_omp.h:
include/uakd/layers.h:
