build-noomp/tests/test_geom_basic: tests/test_geom_basic.c tests/test.h \
 include/uakd/geom.h include/uakd/status.h include/uakd/rng.h
tests/test.h:
include/uakd/geom.h:
include/uakd/status.h:
include/uakd/rng.h:
