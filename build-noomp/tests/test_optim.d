build-noomp/tests/test_optim: tests/test_optim.c tests/test.h \
 include/uakd/net.h include/uakd/layers.h include/uakd/rng.h \
 include/uakd/status.h include/uakd/optim.h
tests/test.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/status.h:
include/uakd/optim.h:
