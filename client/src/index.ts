/** @workbench/client: the typed client of the Workbench API, for browsers and Node 20+. */
export { WorkbenchClient, type ClientOptions, type FileRead, type RawRead, type ReadOptions, type TokenSet, type WriteOptions } from './client.js'
export { ApiError, NETWORK_ERROR } from './errors.js'
export { newId } from './ids.js'
export {
  Live, Subscription, SubscriptionPresence, type BroadcastMessage, type PresenceEvent, type PresenceListener, type PresenceMember, type LiveEvent, type LiveOptions, type LiveStatus, type SubscribeOptions,
  type WebSocketConstructor, type WebSocketLike
} from './live.js'
export { WorkspaceMirror, comparePaths, type MirrorOptions, type MirrorUpdate } from './mirror.js'
export { ROUTES, NOT_METHODS, encodeFilePath, routeUrl, type HttpMethod, type RouteName } from './routes.js'
export * from './types.js'
