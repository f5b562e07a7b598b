build-noomp/tools/cmd_fit_demo.o: tools/cmd_fit_demo.c tools/cli.h \
 include/uakd/status.h include/uakd/backend.h include/uakd/net.h \
 include/uakd/layers.h include/uakd/rng.h include/uakd/optim.h
tools/cli.h:
include/uakd/status.h:
include/uakd/backend.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/optim.h:
