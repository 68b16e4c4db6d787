/*
 * mqtt_int.h - helpers shared by the codec's own files only.
 */
#ifndef CB_MQTT_INT_H
#define CB_MQTT_INT_H

#include "util.h"

/* Fills why (when the caller gave one) with a reason that names what was
 * found, so the log line says what to fix without a packet capture. */
void mqtt_why(char *why, const char *fmt, ...) CB_PRINTF(2, 3);

#endif
