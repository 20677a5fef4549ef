/**
 * Endpoints without addresses: the monitor drops destroy notices of them before they become
 * events; the live model and `watch` ask the same question of what reaches them, from there.
 */
export { isBlankEndpoint } from "../monitor/blank-endpoint.ts";
