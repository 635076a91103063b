// The migration of apps/web/src/hooks/useWebSocket.ts (docs/client.md): one line.
export { useWebSocket, useWebSocketEvent } from '@operate/realtime-client/react';
