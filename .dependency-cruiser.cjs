/** Import direction (../docs/architecture.md): cli -> client | worker | coordinator -> protocol -> wire. */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'wire-is-pure',
      comment: 'The codec uses only errors and itself: no sockets, timers or clocks.',
      severity: 'error',
      from: { path: '^src/wire/' },
      to: { pathNot: ['^src/wire/', '^src/errors\\.ts$'] },
    },
    {
      name: 'protocol-below-roles',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: ['^src/(coordinator|worker|client|cli|store)/'] },
    },
    {
      name: 'transport-knows-no-message',
      severity: 'error',
      from: { path: '^src/transport/' },
      to: { path: ['^src/(coordinator|worker|client|cli|store|protocol)/'] },
    },
    {
      name: 'store-below-coordinator',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: ['^src/(coordinator|worker|client|cli)/'] },
    },
    {
      name: 'sdks-apart',
      comment: 'The worker SDK, the client SDK and the coordinator do not import each other.',
      severity: 'error',
      from: { path: '^src/(worker|client|coordinator)/' },
      to: { path: ['^src/cli/'] },
    },
    { name: 'worker-not-coordinator', severity: 'error', from: { path: '^src/worker/' }, to: { path: '^src/(coordinator|store)/' } },
    { name: 'client-not-coordinator', severity: 'error', from: { path: '^src/client/' }, to: { path: '^src/(coordinator|store)/' } },
    { name: 'coordinator-not-sdks', severity: 'error', from: { path: '^src/coordinator/' }, to: { path: '^src/(worker|client)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
