build-noomp/tools/cli.o: tools/cli.c tools/cli.h include/uakd/status.h
tools/cli.h:
include/uakd/status.h:
