build-noomp/tests/test_torch_parity: tests/test_torch_parity.c \
 tests/test.h include/uakd/backend.h include/uakd/status.h \
 include/uakd/net.h include/uakd/layers.h include/uakd/rng.h \
 include/uakd/optim.h
tests/test.h:
include/uakd/backend.h:
include/uakd/status.h:
include/uakd/net.h:
include/uakd/layers.h:
include/uakd/rng.h:
include/uakd/optim.h:
