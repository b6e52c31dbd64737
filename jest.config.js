// ESM + @swc/jest: the setup that runs real execa 9, yargs 18 and cdktf synth inside jest.
export default {
  testEnvironment: "node",
  // Jest 30's clean-up of globals wraps them in proxies again for every file a worker runs; with two
  // dozen files one worker overflowed the stack (a RangeError in Reflect.set) before its tests ran.
  testEnvironmentOptions: { globalsCleanup: "off" },
  roots: ["<rootDir>/test"],
  testMatch: ["**/*.test.ts"],
  testPathIgnorePatterns: ["/node_modules/", "/helpers/"],
  extensionsToTreatAsEsm: [".ts"],
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "es6" } }],
  },
  testTimeout: 120000,
  // Most suites wait on real servers, not the CPU: two at a time halves the wall time on 2 cores
  // (one, jest's default there, took 18 minutes); every test is written to pass on a busy machine.
  maxWorkers: 2,
  globalSetup: "<rootDir>/test/helpers/global-setup.ts",
};
