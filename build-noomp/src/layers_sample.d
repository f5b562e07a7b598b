build-noomp/src/layers_sample.o: src/layers_sample.c src/layers_omp.h \
 include/uakd/layers.h
src/layers_omp.h:
include/uakd/layers.h:
