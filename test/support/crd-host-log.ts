/** Lines as the CRD host writes them to syslog (remoting/host/host_event_logger_posix.cc); the id is the client's signaling id. */
export const CRD_STARTED = 'Host started for user: host-owner@example.com';
export const crdConnected = (who: string) => `Client connected: ${who}@example.com/chromoting_ftl_5b1c`;
export const crdDisconnected = (who: string) => `Client disconnected: ${who}@example.com/chromoting_ftl_5b1c`;
export const CRD_ROUTE =
  "Channel IP for client: ada@example.com/chromoting_ftl_5b1c ip='203.0.113.9:50000' host_ip='10.0.1.5:41000' channel='video' connection='stun'";
