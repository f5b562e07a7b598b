build-noomp/src/version.o: src/version.c include/uakd/version.h
include/uakd/version.h:
