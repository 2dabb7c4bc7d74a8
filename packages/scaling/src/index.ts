export { plan, recordProbe, emptyMemory, splitDesired, parseDesired, DEFAULT_POLICY } from './plan.ts';
export type { Plan, PlanInput, Action, Condition, ObservedServer, ServerHealth, SlotMemory, ScalingPolicy, ServerState } from './plan.ts';
