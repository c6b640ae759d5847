/*
 * dysan_app.h -- the device application: link, commands, modes, uploads, and the sanitization pipeline
 * (docs/firmware.md; the wire protocol is docs/protocol.md).
 *
 * Modes. IDLE: samples are ignored. STREAMING: samples come from dysan_port_imu_read(). REPLAY: samples
 * come from SAMPLES frames (the emulator's IMU; boards with an IMU build with DYSAN_APP_REPLAY=0 and refuse
 * it). Entering a mode starts a new stream: the partial segment of the previous one is flushed (selected
 * on the windows so far and sent), the sample ring is emptied and the schedule restarts at window 0.
 * CALIBRATION is entered only through a signed CALIB_START: RAW_WINDOW frames then carry the raw int16
 * windows, from the IMU or, when the session was opened in REPLAY mode, from SAMPLES; the session ends
 * with CALIB_STOP or after max_windows windows, and the device returns to IDLE. Raw windows leave the
 * device at no other time.
 *
 * Fail closed. Sanitized windows are produced only with a valid bundle, a loaded RF whose classes match
 * the bundle's, and a stated sensitive value; otherwise windows are dropped, INFO shows what is missing
 * (bundle_valid, rf_loaded, sensitive_set) and a LOG line says why when a streaming mode is entered.
 *
 * Every command that changes what the device sends is authenticated (dysan_proto_accept, counter persisted
 * in the STATE region before anything acts); a refused one is answered with ERROR and changes nothing.
 */
#ifndef DYSAN_APP_H
#define DYSAN_APP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DYSAN_FW_VERSION 0x00010000u /* 1.0.0: major << 16 | minor << 8 | patch */

#ifndef DYSAN_APP_REPLAY
#define DYSAN_APP_REPLAY 1 /* accept REPLAY mode (emulator, host build, benchmarks) */
#endif

/* Reads the identity, the STATE region, the bundle and the RF; announces itself with LOG lines. Call once,
 * after dysan_port_init(). */
void dysan_app_init(void);

/* One turn of the main loop: link bytes, IMU samples, or an idle wait when there was nothing. */
void dysan_app_poll(void);

#ifdef __cplusplus
}
#endif

#endif /* DYSAN_APP_H */
