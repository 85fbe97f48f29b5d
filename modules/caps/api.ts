// The caps module's API for other modules: computing and checking XEP-0115 verification strings
// (PEP verifies the `ver` its contacts announce).
export { isCapsHash, verOfQuery, capsVer, capsInfoOf, capsProblem } from './ver.js';
export type { CapsHash, CapsInfo, CapsIdentity } from './ver.js';
