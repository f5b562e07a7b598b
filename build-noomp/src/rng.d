build-noomp/src/rng.o: src/rng.c include/uakd/rng.h
include/uakd/rng.h:
