// The built-in drivers. Each module registers itself; stacks and provider classes load only when
// an operation needs them.
import "./local.js";
