export { plan, recordProbe, emptyMemory, DEFAULT_POLICY } from './plan.ts';
export type { Plan, PlanInput, Action, Condition, ObservedServer, ServerHealth, SlotMemory, ScalingPolicy, ServerState } from './plan.ts';
