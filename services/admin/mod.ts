export { Admin, type AdminDeps } from './admin.js';
export { adminConfigSchema, adminSchemas, type AdminConfig, type AddAppRequest, type AddModelRequest } from './types.js';
