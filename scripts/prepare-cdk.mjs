// Installs the CDK construct's own dependencies (cdk/package-lock.json) when they are
// missing or differ from its lock file: the construct's tests run with the project's,
// but aws-cdk-lib stays out of the function's bundle and the root lock file.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const CDK = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'cdk');
const lock = JSON.parse(readFileSync(join(CDK, 'package-lock.json'), 'utf8'));
const stale = Object.entries(lock.packages)
  .filter(([path]) => path.startsWith('node_modules/'))
  .some(([path, { version }]) => {
    const manifest = join(CDK, path, 'package.json');
    return !existsSync(manifest) || JSON.parse(readFileSync(manifest, 'utf8')).version !== version;
  });
if (stale) {
  console.log('Installing the CDK construct\'s dependencies (npm ci --prefix cdk)');
  execFileSync('npm', ['ci', '--prefix', CDK, '--no-audit', '--no-fund'], { stdio: 'inherit' });
}
