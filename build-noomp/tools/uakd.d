build-noomp/tools/uakd.o: tools/uakd.c tools/cli.h include/uakd/status.h
tools/cli.h:
include/uakd/status.h:
