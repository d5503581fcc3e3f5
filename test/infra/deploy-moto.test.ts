// `npm run deploy` for real, against moto_server on a free loopback port: the way a
// first-time user deploys (no parameters), again (a redeploy with a changed and then
// an omitted parameter), and after `osls remove`, when the credentials secret the
// removed stack kept is re-used (with a workspace management key, so that the function
// may rotate that secret itself). What CloudFormation created is read back with the
// AWS SDK. moto accepts, but does not create, some resource types, and ignores some
// properties (the function's Architectures and ReservedConcurrentExecutions, the
// table's TimeToLiveSpecification and PointInTimeRecoverySpecification) and updates
// to a role's inline policy: those are listed below and pinned by the template tests
// (deploy.test.ts, which evaluate the policy for every parameter combination) instead.
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CloudFormationClient, DescribeStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeRuleCommand, EventBridgeClient, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { GetRolePolicyCommand, IAMClient } from '@aws-sdk/client-iam';
import { GetFunctionConcurrencyCommand, GetFunctionConfigurationCommand, GetPolicyCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateSecretCommand, DeleteSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMotoServer, type MotoServer, startMotoServer, toolGate } from '../helpers/moto.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const OSLS = join(ROOT, 'node_modules/osls/bin/serverless.js');
// What a clone holds that a deploy reads; node_modules is linked, not copied.
const PROJECT_FILES = ['package.json', 'serverless.yml', 'tsconfig.json', 'infra', 'scripts', 'functions', 'cli'];
const REGION = 'us-east-1';
const ACCOUNT = '123456789012'; // moto's account
const STAGE = 'ci';
const STACK = `stytch-secret-rotation-${STAGE}`;
const FUNCTION_NAME = STACK;
const FUNCTION_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${FUNCTION_NAME}`;
const CREDENTIALS_NAME = `stytch-secret-rotation/${STAGE}/stytch-project-credentials`;

// Resource types moto_server 5.x accepts in a template without creating anything (it
// reports them with no logical id). Each is pinned by the template tests instead.
const NOT_CREATED_BY_MOTO = [
  'AWS::CloudWatch::Alarm', // 'alarms on any function error within 5 minutes'
  'AWS::S3::BucketPolicy', // osls's own deployment bucket policy (HTTPS only)
  'AWS::SNS::TopicPolicy', // 'lets only that rule and the errors alarm publish to the topic'
  'AWS::SecretsManager::Secret', // 'Secrets' describe block
];

const motoPath = await findMotoServer();
const gate = toolGate('moto_server', motoPath);

interface Run {
  code: number;
  output: string;
}

describe.skipIf(gate.skip)(gate.title('npm run deploy against moto_server'), () => {
  let moto: MotoServer;
  let env: NodeJS.ProcessEnv;
  // The deploys run in a copy of the project, so that their dist/ and .serverless/
  // never meet those of the other tests running at the same time.
  let project: string;
  let clients: {
    cloudFormation: CloudFormationClient;
    lambda: LambdaClient;
    iam: IAMClient;
    dynamodb: DynamoDBClient;
    events: EventBridgeClient;
    secrets: SecretsManagerClient;
  };

  const run = (args: string[]): Promise<Run> =>
    new Promise((done) => {
      execFile(args[0] ?? '', args.slice(1), { cwd: project, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
      });
    });
  const deploy = (...args: string[]) => run(['npm', 'run', '--silent', 'deploy', '--', '--stage', STAGE, ...args]);

  const functionConfiguration = () => clients.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: FUNCTION_NAME }));
  const rolePolicy = async () => {
    const roleName = (await functionConfiguration()).Role?.split('/').pop();
    const policy = await clients.iam.send(new GetRolePolicyCommand({ RoleName: roleName, PolicyName: 'rotate-stytch-client-secrets' }));
    const document = decodeURIComponent(policy.PolicyDocument ?? '{}');
    // moto 5 returns an inline policy made by CloudFormation as a Python dict's repr,
    // with None where CloudFormation would drop an AWS::NoValue (a switched-off
    // statement) or a Ref to a type it does not create. Nothing in this policy contains
    // a quote, so swapping quotes and None makes it JSON; the Nones are then dropped.
    const json = document.startsWith("{'") ? document.replaceAll("'", '"').replaceAll('None', 'null') : document;
    const parsed = JSON.parse(json) as { Statement: ({ Sid: string; Resource: unknown; Action: unknown; Condition?: unknown } | null)[] };
    return { Statement: parsed.Statement.filter((statement) => statement !== null) };
  };
  const reservation = async () =>
    (await clients.lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: FUNCTION_NAME }))).ReservedConcurrentExecutions;
  // Physical ids by logical id (moto gives this stack no Outputs: some name resources it
  // does not create).
  const physicalIds = async () => {
    const { StackResources } = await clients.cloudFormation.send(new DescribeStackResourcesCommand({ StackName: STACK }));
    return Object.fromEntries((StackResources ?? []).map((resource) => [resource.LogicalResourceId, resource.PhysicalResourceId]));
  };

  beforeAll(async () => {
    project = mkdtempSync(join(tmpdir(), 'stytch-rotation-deploy-'));
    for (const entry of PROJECT_FILES) cpSync(join(ROOT, entry), join(project, entry), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(project, 'node_modules'), 'dir');
    moto = await startMotoServer(gate.assert());
    env = {
      ...process.env,
      AWS_ENDPOINT_URL: moto.url,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: REGION,
      AWS_DEFAULT_REGION: REGION,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    delete env.AWS_PROFILE;
    const config = { region: REGION, endpoint: moto.url, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
    clients = {
      cloudFormation: new CloudFormationClient(config),
      lambda: new LambdaClient(config),
      iam: new IAMClient(config),
      dynamodb: new DynamoDBClient(config),
      events: new EventBridgeClient(config),
      secrets: new SecretsManagerClient(config),
    };
  }, 60_000);

  afterAll(async () => {
    for (const client of Object.values(clients ?? {})) client.destroy();
    await moto?.stop();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('deploys from a clean state with no parameters, and creates what the template declares', async () => {
    // Act
    const first = await deploy();

    // Assess: the function as declared, with no reservation and no VPC.
    expect(first.output).toContain(`Service deployed to stack ${STACK}`);
    expect(first.code, first.output).toBe(0);
    const fn = await functionConfiguration();
    // (moto ignores Architectures; arm64 is pinned by the template tests.)
    expect(fn).toMatchObject({ Runtime: 'nodejs22.x', Handler: 'dist/rotate-stytch-secret/index.handler', MemorySize: 256, Timeout: 60 });
    expect(fn.VpcConfig?.SubnetIds ?? []).toEqual([]);
    expect(await reservation()).toBeUndefined();
    const ids = await physicalIds();
    const tableName = ids.RotationStateTable ?? '';
    const tableArn = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${tableName}`;
    expect(tableName).toMatch(/^stytch-secret-rotation-ci-RotationStateTable-/);
    expect(fn.Environment?.Variables).toMatchObject({ ROTATION_STATE_TABLE: tableName });
    // No management key given: the function is told of none.
    expect(fn.Environment?.Variables).not.toHaveProperty('STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID');
    // (moto passes the number parameter through unconverted: 3600, not '3600'.)
    expect(String(fn.Environment?.Variables?.PREVIOUS_SECRET_GRACE_SECONDS)).toBe('3600');

    // The role: rotation on any secret attached to this function, the table, the logs.
    const statements = (await rolePolicy()).Statement;
    expect(statements.map((statement) => statement.Sid)).toEqual([
      'RotateStytchClientSecrets',
      'ReadStytchProjectCredentials',
      'UseOwnStateTable',
      'WriteOwnLogs',
    ]);
    expect(statements[0]).toMatchObject({
      Resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:*`,
      Condition: { StringEquals: { 'secretsmanager:resource/AllowRotationLambdaArn': FUNCTION_ARN } },
    });
    expect(statements[2]).toMatchObject({ Resource: tableArn });

    // Who may invoke it: Secrets Manager of this account, and the sweep rule.
    const policy = JSON.parse((await clients.lambda.send(new GetPolicyCommand({ FunctionName: FUNCTION_NAME }))).Policy ?? '{}') as {
      Statement: { Principal: { Service: string }; Condition?: Record<string, Record<string, string>> }[];
    };
    const byPrincipal = Object.fromEntries(policy.Statement.map((statement) => [statement.Principal.Service, statement.Condition]));
    expect(Object.keys(byPrincipal).sort()).toEqual(['events.amazonaws.com', 'secretsmanager.amazonaws.com']);
    expect(JSON.stringify(byPrincipal['secretsmanager.amazonaws.com'])).toContain(ACCOUNT);
    expect(JSON.stringify(byPrincipal['events.amazonaws.com'])).toContain('RetirementSweepRule');

    // The state table and the sweep schedule.
    const table = await clients.dynamodb.send(new DescribeTableCommand({ TableName: tableName }));
    expect(table.Table).toMatchObject({ KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }], BillingModeSummary: { BillingMode: 'PAY_PER_REQUEST' } });
    const sweepRule = ids.RetirementSweepRule;
    const rule = await clients.events.send(new DescribeRuleCommand({ Name: sweepRule }));
    expect(rule).toMatchObject({ ScheduleExpression: 'rate(5 minutes)', State: 'ENABLED' });
    const targets = await clients.events.send(new ListTargetsByRuleCommand({ Rule: sweepRule }));
    expect(targets.Targets?.map((target) => target.Arn)).toEqual([FUNCTION_ARN]);

    // What moto did not create is exactly the list above (a new unsupported type, or
    // one moto starts to create, shows here).
    const template = JSON.parse(readFileSync(join(project, '.serverless/cloudformation-template-update-stack.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Condition?: string }>;
    };
    const created = new Set(Object.keys(ids));
    const declared = Object.entries(template.Resources).filter(([, resource]) => !resource.Condition || ['CreatesCredentialsSecret', 'CreatesAlertsTopic', 'CreatesAlertsKey'].includes(resource.Condition));
    const missing = declared.filter(([logicalId]) => !created.has(logicalId)).map(([, resource]) => resource.Type);
    expect([...new Set(missing)].sort()).toEqual(NOT_CREATED_BY_MOTO);
  }, 240_000);

  it('applies a changed parameter on redeploy, and an omitted one falls back to its default without losing access', async () => {
    // Act: a shorter overlap window and one listed secret; then deploy again without
    // either. (moto keeps a role's first inline policy on update, so the narrowed and
    // restored rotation statement is checked by the template tests.)
    const listed = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:prod/billing/stytch-client-AbCdEf`;
    const second = await deploy('--param=previousSecretGraceSeconds=60', `--param=rotatedSecretArns=${listed}`);
    const window = (await functionConfiguration()).Environment?.Variables?.PREVIOUS_SECRET_GRACE_SECONDS;
    const third = await deploy();

    // Assess
    expect(second.code, second.output).toBe(0);
    expect(String(window)).toBe('60');
    expect(third.code, third.output).toBe(0);
    expect(String((await functionConfiguration()).Environment?.Variables?.PREVIOUS_SECRET_GRACE_SECONDS)).toBe('3600');
    expect((await rolePolicy()).Statement[0]).toMatchObject({
      Sid: 'RotateStytchClientSecrets',
      Resource: `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:*`,
    });
  }, 240_000);

  it('refuses bad parameters before changing anything, saying how to fix them', async () => {
    // Act
    const result = await deploy('--param=subnetIds=subnet-0123456789abcdef0');
    const byName = await deploy('--param=managementCredentialsSecretArn=stytch/management-credentials');

    // Assess
    expect(result.code).toBe(2);
    expect(result.output).toContain('subnetIds needs securityGroupIds too');
    expect(result.output).not.toContain('Deploying');
    expect(byName.code).toBe(2);
    expect(byName.output).toContain('managementCredentialsSecretArn must be the full ARN of the secret');
    expect(byName.output).toContain('aws secretsmanager describe-secret --secret-id stytch/management-credentials --query ARN');
    expect(byName.output).not.toContain('Deploying');
  }, 60_000);

  it('deploys again after a removal, re-using the credentials secret the removed stack kept, with a management key to rotate it', async () => {
    // Prepare: remove the stack. On AWS the credentials secret survives (it is
    // retained); moto does not create it, so it is put back as AWS would have kept it.
    // The deploy also gets a workspace management key (a fresh stack: moto keeps a
    // role's first inline policy on update, so its statements show only on a create).
    const removed = await run([process.execPath, OSLS, 'remove', '--stage', STAGE, '--region', REGION]);
    expect(removed.code, removed.output).toBe(0);
    const kept = await clients.secrets.send(
      new CreateSecretCommand({ Name: CREDENTIALS_NAME, SecretString: JSON.stringify({ project_id: 'project-test-kept', secret: 'kept' }) }),
    );
    const management = await clients.secrets.send(
      new CreateSecretCommand({ Name: 'stytch/management-credentials', SecretString: JSON.stringify({ workspace_key_id: 'workspace-key-test', workspace_key_secret: 'kept' }) }),
    );

    // Act
    const again = await deploy(`--param=managementCredentialsSecretArn=${management.ARN}`);

    // Assess: the kept secret is the one the function reads and may read; the
    // management key is named to the function, readable (only), and the kept
    // credentials secret rotatable while this function is its rotation function.
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain(`Re-using the credentials secret ${kept.ARN}`);
    expect((await functionConfiguration()).Environment?.Variables).toMatchObject({
      STYTCH_CREDENTIALS_SECRET_ID: kept.ARN,
      STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: management.ARN,
    });
    const bySid = new Map((await rolePolicy()).Statement.map((statement) => [statement.Sid, statement]));
    expect(bySid.get('ReadStytchProjectCredentials')?.Resource).toEqual([kept.ARN]);
    expect(bySid.get('ReadStytchManagementCredentials')).toEqual({
      Sid: 'ReadStytchManagementCredentials',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: management.ARN,
    });
    expect(bySid.get('RotateStytchProjectSecrets')).toMatchObject({
      Resource: [kept.ARN],
      Condition: { StringEquals: { 'secretsmanager:resource/AllowRotationLambdaArn': FUNCTION_ARN } },
    });
  }, 240_000);

  it('refuses to deploy while the kept credentials secret is scheduled for deletion, naming both ways out', async () => {
    // Prepare
    await clients.secrets.send(new DeleteSecretCommand({ SecretId: CREDENTIALS_NAME, RecoveryWindowInDays: 7 }));

    // Act
    const result = await deploy();

    // Assess
    expect(result.code).toBe(2);
    expect(result.output).toContain('scheduled for deletion');
    expect(result.output).toContain(`aws secretsmanager restore-secret --secret-id ${CREDENTIALS_NAME}`);
    expect(result.output).toContain('--force-delete-without-recovery');
    expect(result.output).not.toContain('Deploying');
  }, 60_000);
});
