/**
 * The buckets of the controller's latency histograms (reconciles, the workqueue, Docker calls):
 * 5 ms to a minute, one set for all, so that their quantiles compare.
 */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
