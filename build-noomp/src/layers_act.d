build-noomp/src/layers_act.o: src/layers_act.c src/layers_omp.h \
 include/uakd/layers.h
src/layers_omp.h:
include/uakd/layers.h:
