build-noomp/src/status.o: src/status.c include/uakd/status.h
include/uakd/status.h:
