// Exposes libzmq (>= 4.3: ZMTP heartbeats, handshake monitor events) to Swift.
// Only the Transport target imports this module.
#ifndef SHOAL_CZEROMQ_SHIM_H
#define SHOAL_CZEROMQ_SHIM_H

#include <zmq.h>

#endif
