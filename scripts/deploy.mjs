#!/usr/bin/env node
// `npm run deploy -- [--stage S] [--region R] [--param="name=value" ...] [other osls flags]`
//
// Builds the bundle, then deploys it with osls, so a stale dist/ is never shipped.
// Every argument is passed to `osls deploy` unchanged. One thing is added: when the
// stage's credentials secret already exists outside the stack (a removed stack keeps
// it, with the project credentials in it), the deploy re-uses it
// (existingCredentialsSecretArn) instead of failing on "already exists".
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OSLS = join(ROOT, 'node_modules/osls/bin/serverless.js');

// The SDK's notice that Node 20 support ends in 2027: the README supports Node 20,
// and the notice would bury the deploy's own output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const fail = (message) => {
  console.error(`npm run deploy: ${message}`);
  process.exit(2);
};

/** The value of `--name value` or `--name=value` (last one wins), or undefined. */
function option(args, name) {
  let value;
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === `--${name}`) {
      value = args[i + 1];
      if (value === undefined || value.startsWith('--')) fail(`--${name} needs a value, e.g. --${name} prod.`);
      i += 1;
    } else if (arg.startsWith(`--${name}=`)) {
      value = arg.slice(name.length + 3);
    }
  }
  return value;
}

/** The osls params given as --param="name=value" or --param name=value. */
function params(args) {
  const found = {};
  for (let i = 0; i < args.length; i += 1) {
    let raw;
    if (args[i] === '--param') raw = args[++i];
    else if (args[i].startsWith('--param=')) raw = args[i].slice('--param='.length);
    else continue;
    const eq = raw?.indexOf('=') ?? -1;
    if (eq <= 0) fail(`--param needs name=value, got ${JSON.stringify(raw ?? '')}. Example: --param="alarmEmail=oncall@example.com"`);
    found[raw.slice(0, eq)] = raw.slice(eq + 1);
  }
  return found;
}

const args = process.argv.slice(2);
const stage = option(args, 'stage') ?? 'dev';
const region = option(args, 'region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
if (!/^[a-zA-Z][a-zA-Z0-9-]*$/.test(stage)) fail(`the stage ${JSON.stringify(stage)} must be letters, digits and hyphens, starting with a letter.`);
const given = params(args);
// Lambda needs both VPC lists; say so before anything is built or changed.
const hasSubnets = !!given.subnetIds?.trim();
const hasGroups = !!given.securityGroupIds?.trim();
if (hasSubnets !== hasGroups) {
  fail(
    hasSubnets
      ? 'subnetIds needs securityGroupIds too: security groups that allow outbound HTTPS (443). Example: --param="securityGroupIds=sg-0123456789abcdef0"'
      : 'securityGroupIds needs subnetIds too: the private subnets to run the function in. Example: --param="subnetIds=subnet-0123456789abcdef0,subnet-0fedcba9876543210"',
  );
}
// The role's GetSecretValue names the management key's secret exactly: a name or a
// partial ARN is refused by the parameter's own pattern (read from the template, so
// the two never differ), here before anything is built, with the way to get the ARN.
const management = given.managementCredentialsSecretArn?.trim();
const managementPattern = /^  ManagementCredentialsSecretArn:\n(?:    .*\n)*?    AllowedPattern: '([^']+)'$/m.exec(
  readFileSync(join(ROOT, 'infra/parameters.yml'), 'utf8'),
)?.[1];
if (!managementPattern) fail('infra/parameters.yml has no AllowedPattern for ManagementCredentialsSecretArn.');
if (management && !new RegExp(managementPattern).test(management)) {
  fail(
    `managementCredentialsSecretArn must be the full ARN of the secret (with its 6-character suffix), got ${JSON.stringify(management)}. ` +
      'Get it with: aws secretsmanager describe-secret --secret-id stytch/management-credentials --query ARN --output text',
  );
}
const service = /^service:\s*(\S+)\s*$/m.exec(readFileSync(join(ROOT, 'serverless.yml'), 'utf8'))?.[1];
if (!service) fail('serverless.yml has no `service:` line.');

const run = (command, commandArgs) => {
  const result = spawnSync(command, commandArgs, { cwd: ROOT, stdio: 'inherit', env: process.env });
  if (result.error) fail(`could not run ${command}: ${result.error.message}`);
  return result.status ?? 1;
};

// 1. A credentials secret left behind by a removed stack.
const extra = [];
if (given.existingCredentialsSecretArn === undefined) {
  const existing = await retainedCredentialsSecret({ service, stage, region });
  if (existing) {
    console.log(`Re-using the credentials secret ${existing} (kept from an earlier stack; existingCredentialsSecretArn).`);
    extra.push(`--param=existingCredentialsSecretArn=${existing}`);
  }
}

// 2. Build, always: the zip osls makes is whatever dist/ holds.
if (run(process.execPath, [join(ROOT, 'scripts/build.mjs')]) !== 0) fail('the build failed; nothing was deployed.');

// 3. Deploy. The region is passed even when it came from the environment, so osls
// and this script agree on it.
const regionArgs = option(args, 'region') === undefined ? ['--region', region] : [];
const stageArgs = option(args, 'stage') === undefined ? ['--stage', stage] : [];
process.exit(run(process.execPath, [OSLS, 'deploy', ...stageArgs, ...regionArgs, ...args, ...extra]));

/**
 * The ARN of `<service>/<stage>/stytch-project-credentials` when it exists and the
 * stack does not own it; undefined when it does not exist or the stack owns it.
 */
async function retainedCredentialsSecret({ service, stage, region }) {
  const { SecretsManagerClient, DescribeSecretCommand } = await import('@aws-sdk/client-secrets-manager');
  const { CloudFormationClient, DescribeStackResourcesCommand } = await import('@aws-sdk/client-cloudformation');
  const name = `${service}/${stage}/stytch-project-credentials`;
  const secrets = new SecretsManagerClient({ region });
  let secret;
  try {
    secret = await secrets.send(new DescribeSecretCommand({ SecretId: name }));
  } catch (error) {
    if (error?.name === 'ResourceNotFoundException') return undefined;
    fail(`could not check for an existing credentials secret ${name}: ${error?.name ?? ''} ${error?.message ?? error}`);
  } finally {
    secrets.destroy();
  }
  if (secret.DeletedDate) {
    fail(
      `the secret ${name} is scheduled for deletion, and its name cannot be used until it is gone. ` +
        `Restore it to keep its credentials (aws secretsmanager restore-secret --secret-id ${name} --region ${region}), ` +
        `or delete it now (aws secretsmanager delete-secret --secret-id ${name} --force-delete-without-recovery --region ${region}), then deploy again.`,
    );
  }
  const cloudFormation = new CloudFormationClient({ region });
  try {
    const owned = await cloudFormation.send(
      new DescribeStackResourcesCommand({ StackName: `${service}-${stage}` }),
    );
    const resource = owned.StackResources?.find((found) => found.LogicalResourceId === 'StytchCredentialsSecret');
    if (resource?.PhysicalResourceId === secret.ARN) return undefined;
  } catch (error) {
    // No such stack: not owned.
    if (!(error?.name === 'ValidationError' && /does not exist/.test(String(error?.message)))) {
      fail(`could not read the stack ${service}-${stage}: ${error?.name ?? ''} ${error?.message ?? error}`);
    }
  } finally {
    cloudFormation.destroy();
  }
  return secret.ARN;
}
