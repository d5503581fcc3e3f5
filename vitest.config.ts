import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'functions/**/*.test.ts', 'cli/**/*.test.ts', 'infra/**/*.test.ts', 'cdk/test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: keep workers bounded so HTTP-based suites do not starve each other.
    maxWorkers: 2,
    reporters: ['default'],
    // The pinned SDK warns on every client under Node 20 (CI's Node); Lambda runs Node 22.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
