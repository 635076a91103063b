// The migration of apps/web/src/lib/websocket/socket-client.ts (docs/client.md): one line.
export { getSocket, connectSocket, disconnectSocket, isSocketConnected } from '@operate/realtime-client';
