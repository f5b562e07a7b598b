/* Building an engine network (uakd/net.h) from a parsed network description (uakd/netdesc.h).
 *
 * Each description layer becomes one or more engine layers:
 *   convolutional   conv (+ batchnorm | groupnorm) (+ activation)
 *   maxpool         maxpool;  upsample (stride 2 only) upsample2
 *   route           concat of the listed layers (one layer: the same map, no new layer)
 *   shortcut        add (+ activation);  activation  activation (linear: no new layer)
 *   avgpool         global average pool;  scale_channels  per-channel product
 *   output          no layer: the tap is the previous layer's map
 * Parameter names follow uakd_netdesc_layer_prefix: layer prefix P gives P.conv.weight,
 * P.conv.bias, P.bn.{weight,bias,running_mean,running_var}, P.gn.{weight,bias}, all behind an
 * optional name prefix (e.g. "backbone."). */
#ifndef UAKD_NETBUILD_H
#define UAKD_NETBUILD_H

#include "uakd/net.h"
#include "uakd/netdesc.h"
#include "uakd/status.h"

/* Appends the layers of d to net, reading the engine layer `input`, which must have d's input
 * shape (channels x height x width). prefix (may be NULL) is prepended to every layer name.
 * ids (may be NULL; d->n_layers entries) receives, per description layer, the engine layer
 * holding its output. Fails naming the description layer when the engine refuses it. */
uakd_status uakd_netbuild_append(uakd_net *net, const uakd_netdesc *d, int input, const char *prefix, int *ids);

/* The engine id of the description's [output] layer `name` given the ids of
 * uakd_netbuild_append, or -1 when there is none. */
int uakd_netbuild_tap(const uakd_netdesc *d, const int *ids, const char *name);

#endif
