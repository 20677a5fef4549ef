/**
 * Starts the eBPF sensor once and prints what happened as one JSON line: {started, output,
 * reason, message}. Run by the sensor test under reduced privileges to see the refusal a user
 * would get.
 */
import { SensorUnavailableError, SetStateSensor } from "../../../src/engine/linux/bpf/sensor.ts";

try {
  const sensor = SetStateSensor.start();
  console.log(JSON.stringify({ started: true, output: sensor.output, reason: null, message: null }));
  sensor.stop();
} catch (error) {
  const reason = error instanceof SensorUnavailableError ? error.reason : null;
  console.log(JSON.stringify({ started: false, output: null, reason, message: (error as Error).message }));
}
