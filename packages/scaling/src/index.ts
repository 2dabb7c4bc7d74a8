export { plan, recordProbe, emptyMemory, splitDesired, parseDesired, DEFAULT_POLICY } from './plan.ts';
export type { Plan, PlanInput, Action, Condition, ObservedServer, ServerHealth, SlotMemory, ScalingPolicy, ServerState } from './plan.ts';
export { parseScalingSchedule, scalingCronFile } from './schedule.ts';
export { setDesiredWebservers, describeSplit } from './desired.ts';
export type { DesiredWebservers } from './desired.ts';
