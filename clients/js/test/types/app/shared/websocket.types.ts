// The migration of packages/shared/src/types/websocket.types.ts (docs/client.md).
export * from '@operate/realtime-client/events';
export { getOrgRoom, getUserRoom } from '@operate/realtime-client';
