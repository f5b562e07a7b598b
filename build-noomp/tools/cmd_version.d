build-noomp/tools/cmd_version.o: tools/cmd_version.c tools/cli.h \
 include/uakd/status.h include/uakd/version.h
tools/cli.h:
include/uakd/status.h:
include/uakd/version.h:
