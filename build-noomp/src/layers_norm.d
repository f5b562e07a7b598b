build-noomp/src/layers_norm.o: src/layers_norm.c src/layers_omp.h \
 include/uakd/layers.h
src/layers_omp.h:
include/uakd/layers.h:
