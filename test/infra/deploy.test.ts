// The deployment as CloudFormation will see it: `osls package` (offline) builds the
// template once, and the tests read it. Template parameters decide the optional parts
// (KMS statement, example secret, e-mail), so the IAM policy is checked the way
// CloudFormation evaluates it, for several parameter sets, by a small evaluator of the
// intrinsic functions the template uses. Then cfn-lint checks the template.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isScheduledEvent, scheduledEventSchema } from '../../functions/lib/schemas.js';
import {
  asList,
  Evaluation as TemplateEvaluation,
  findCfnLint,
  type Json,
  type JsonObject,
  policyStatements,
  type Resource,
  type Statement,
  type Template,
  zipEntries,
} from '../helpers/cfn.js';

const run = promisify(execFile);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE = join(ROOT, 'dist/rotate-stytch-secret/index.mjs');
const OSLS = join(ROOT, 'node_modules/osls/bin/serverless.js');

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const SM = `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret`;
const FUNCTION_NAME = 'stytch-secret-rotation-test';
const FUNCTION_ARN = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${FUNCTION_NAME}`;
const LOG_GROUP_ARN = `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/${FUNCTION_NAME}:*`;

const ROTATED_1 = `${SM}:prod/app-one/stytch-client-AbCdEf`;
const ROTATED_2 = `${SM}:prod/app-two/stytch-client-GhIjKl`;
const OTHER_CREDENTIALS = `${SM}:other-project/stytch-credentials-MnOpQr`;
// A credentials secret kept from a removed stack (existingCredentialsSecretArn).
const RETAINED_CREDENTIALS = `${SM}:stytch-secret-rotation/test/stytch-project-credentials-RtNdQz`;
// The workspace management key that rotates project API secrets (managementCredentialsSecretArn).
const MANAGEMENT_CREDENTIALS = `${SM}:stytch/management-credentials-MgKyAb`;
const KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
const EXTRA_KMS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/aaaa1111-2222-3333-4444-555566667777`;
const ALL_SECRETS = `${SM}:*`;
const SUBNETS = 'subnet-0123456789abcdef0,subnet-0fedcba9876543210';
const SECURITY_GROUP = 'sg-0123456789abcdef0';
const BOUNDARY = `arn:aws:iam::${ACCOUNT}:policy/platform-boundary`;
// A deployer's own topic for the alerts (alertsTopicArn).
const EXISTING_TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:platform-alerts`;
// A deployer's own key for the alerts topic (alertsKmsKeyArn).
const OWN_ALERTS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/5678efab-56ef-78ab-90cd-5678901234ef`;

// What the stack's own resources resolve to (Ref / GetAtt), as CloudFormation would.
const CREDENTIALS_SECRET = `${SM}:stytch-secret-rotation/test/stytch-project-credentials-StUvWx`;
const EXAMPLE_SECRET = `${SM}:stytch-secret-rotation/test/example-stytch-client-YzAbCd`;
const TOPIC_ARN = `arn:aws:sns:${REGION}:${ACCOUNT}:stytch-secret-rotation-test-RotationAlertsTopic-X1`;
const RULE_ARN = `arn:aws:events:${REGION}:${ACCOUNT}:rule/stytch-secret-rotation-test-RotationFailureRule-X2`;
const ALARM_ARN = `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${FUNCTION_NAME}-errors`;
const ROLE_ARN = `arn:aws:iam::${ACCOUNT}:role/stytch-secret-rotation-test-RotateStytchSecretRole-X3`;
const TABLE_NAME = 'stytch-secret-rotation-test-RotationStateTable-X5';
const TABLE_ARN = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/${TABLE_NAME}`;
const SWEEP_RULE_ARN = `arn:aws:events:${REGION}:${ACCOUNT}:rule/stytch-secret-rotation-test-RetirementSweepRule-X6`;
const STACK_ALERTS_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/9abc0123-9abc-0123-4567-9abc01234567`;
const REFS: Record<string, string> = {
  StytchCredentialsSecret: CREDENTIALS_SECRET,
  ExampleStytchClientSecret: EXAMPLE_SECRET,
  RotationAlertsTopic: TOPIC_ARN,
  RotateStytchSecretLambdaFunction: FUNCTION_NAME,
  RotateStytchSecretRole: 'stytch-secret-rotation-test-RotateStytchSecretRole-X3',
  ServerlessDeploymentBucket: 'stytch-secret-rotation-te-serverlessdeploymentbuck-x4',
  RotationStateTable: TABLE_NAME,
  RetirementSweepRule: 'stytch-secret-rotation-test-RetirementSweepRule-X6',
};
const GET_ATTS: Record<string, string> = {
  'RotateStytchSecretLambdaFunction.Arn': FUNCTION_ARN,
  'RotateStytchSecretLogGroup.Arn': LOG_GROUP_ARN,
  'RotateStytchSecretRole.Arn': ROLE_ARN,
  'RotationFailureRule.Arn': RULE_ARN,
  'RotateStytchSecretErrorsAlarm.Arn': ALARM_ARN,
  'ServerlessDeploymentBucket.Arn': 'arn:aws:s3:::stytch-secret-rotation-te-serverlessdeploymentbuck-x4',
  'RotationStateTable.Arn': TABLE_ARN,
  'RetirementSweepRule.Arn': SWEEP_RULE_ARN,
  'RotationAlertsKey.Arn': STACK_ALERTS_KEY,
};
const PSEUDO: Record<string, string> = {
  'AWS::AccountId': ACCOUNT,
  'AWS::Region': REGION,
  'AWS::Partition': 'aws',
  'AWS::StackName': 'stytch-secret-rotation-test',
};

// The --param values of the main `osls package` run: every optional part switched on.
// Scenarios below override the template parameters these become the defaults of.
// alertsKmsKeyArn is left out on purpose: its default (the stack creates the alerts
// key) is what most deployments get, so the packaged default is the one checked.
// A second run with no --param at all gives the template a first-time user deploys.
const PACKAGE_PARAMS = {
  rotatedSecretArns: `${ROTATED_1},${ROTATED_2}`,
  rotatedSecretTagValue: 'stytch-prod',
  extraCredentialsSecretArns: OTHER_CREDENTIALS,
  managementCredentialsSecretArn: MANAGEMENT_CREDENTIALS,
  kmsKeyArn: KMS_KEY,
  extraKmsKeyArns: EXTRA_KMS_KEY,
  alarmEmail: 'rotation-alerts@example.com',
  createExampleSecret: 'true',
  reservedConcurrency: '10',
  subnetIds: SUBNETS,
  securityGroupIds: SECURITY_GROUP,
  permissionsBoundaryArn: BOUNDARY,
};

// ---------------------------------------------------------------------------------

/** The evaluator of test/helpers/cfn.ts, in this file's world. */
class Evaluation extends TemplateEvaluation {
  constructor(template: Template, overrides: Record<string, string> = {}) {
    super(template, overrides, { refs: REFS, getAtts: GET_ATTS, pseudo: PSEUDO });
  }
}

// IAM prefixes of the AWS SDK clients the code uses.
const IAM_PREFIX: Record<string, string> = {
  '@aws-sdk/client-secrets-manager': 'secretsmanager',
  '@aws-sdk/client-dynamodb': 'dynamodb',
  '@aws-sdk/client-lambda': 'lambda',
  '@aws-sdk/client-cloudformation': 'cloudformation',
  '@aws-sdk/client-iam': 'iam',
  '@aws-sdk/client-eventbridge': 'events',
  '@aws-sdk/client-sts': 'sts',
};

/**
 * The AWS calls an entry point's code can make, as IAM actions: every `XCommand` or
 * `paginateX` the project's own source files reachable from the entry (esbuild's
 * view of the bundle) import from an AWS SDK client. A call added anywhere in that
 * code shows here.
 */
async function awsActionsOf(entry: string): Promise<string[]> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [join(ROOT, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    write: false,
    metafile: true,
    logLevel: 'silent',
    mainFields: ['module', 'main'],
  });
  const actions = new Set<string>();
  for (const input of Object.keys(result.metafile.inputs)) {
    if (input.includes('node_modules')) continue;
    const source = readFileSync(join(ROOT, input), 'utf8');
    for (const [, names = '', client = ''] of source.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*'(@aws-sdk\/client-[a-z0-9-]+)'/g)) {
      const prefix = IAM_PREFIX[client];
      if (!prefix) throw new Error(`${input} uses ${client}: add its IAM prefix to IAM_PREFIX`);
      for (const name of names.split(',').map((part) => part.trim())) {
        if (name.startsWith('type ')) continue;
        const command = /^(\w+)Command$/.exec(name) ?? /^paginate(\w+)$/.exec(name);
        if (command && new RegExp(`\\b${name}\\b\\s*\\(`).test(source)) actions.add(`${prefix}:${command[1]}`);
      }
    }
  }
  return [...actions].sort();
}

/** The actions a policy document's Allow statements grant (no wildcards expected). */
function grantedActions(document: { Statement: Statement[] }): Set<string> {
  return new Set(document.Statement.filter((statement) => statement.Effect === 'Allow').flatMap((statement) => asList(statement.Action)));
}

const readPolicy = (name: string) => JSON.parse(readFileSync(join(ROOT, 'docs/iam', name), 'utf8')) as { Version: string; Statement: Statement[] };

// What deploying, updating and removing each resource type of the template needs
// beyond CloudFormation itself (docs/iam/deployer-policy.json). A type missing here
// fails the test: add the actions to the policy and to this table.
const DEPLOYER_ACTIONS_BY_TYPE: Record<string, string[]> = {
  'AWS::S3::Bucket': ['s3:CreateBucket', 's3:DeleteBucket', 's3:PutBucketPolicy', 's3:PutEncryptionConfiguration', 's3:PutObject', 's3:GetObject', 's3:ListBucket', 's3:DeleteObject'],
  'AWS::S3::BucketPolicy': ['s3:PutBucketPolicy', 's3:GetBucketPolicy', 's3:DeleteBucketPolicy'],
  'AWS::Logs::LogGroup': ['logs:CreateLogGroup', 'logs:DeleteLogGroup', 'logs:PutRetentionPolicy', 'logs:DescribeLogGroups'],
  'AWS::Lambda::Function': [
    'lambda:CreateFunction', 'lambda:DeleteFunction', 'lambda:GetFunction', 'lambda:UpdateFunctionCode',
    'lambda:UpdateFunctionConfiguration', 'lambda:PutFunctionConcurrency', 'lambda:DeleteFunctionConcurrency', 'lambda:TagResource',
    'iam:PassRole', 'ec2:DescribeSecurityGroups', 'ec2:DescribeSubnets', 'ec2:DescribeVpcs',
  ],
  'AWS::Lambda::Permission': ['lambda:AddPermission', 'lambda:RemovePermission'],
  'AWS::IAM::Role': [
    'iam:CreateRole', 'iam:DeleteRole', 'iam:GetRole', 'iam:PutRolePolicy', 'iam:DeleteRolePolicy', 'iam:GetRolePolicy',
    'iam:PutRolePermissionsBoundary', 'iam:DeleteRolePermissionsBoundary', 'iam:UpdateAssumeRolePolicy', 'iam:TagRole',
  ],
  'AWS::SecretsManager::Secret': ['secretsmanager:CreateSecret', 'secretsmanager:DeleteSecret', 'secretsmanager:DescribeSecret', 'secretsmanager:GetRandomPassword', 'secretsmanager:UpdateSecret', 'secretsmanager:TagResource'],
  'AWS::SecretsManager::RotationSchedule': ['secretsmanager:RotateSecret', 'lambda:InvokeFunction'],
  'AWS::DynamoDB::Table': ['dynamodb:CreateTable', 'dynamodb:DescribeTable', 'dynamodb:UpdateTable', 'dynamodb:UpdateTimeToLive', 'dynamodb:DescribeTimeToLive', 'dynamodb:UpdateContinuousBackups', 'dynamodb:DescribeContinuousBackups', 'dynamodb:TagResource'],
  'AWS::Events::Rule': ['events:PutRule', 'events:DeleteRule', 'events:DescribeRule', 'events:PutTargets', 'events:RemoveTargets'],
  'AWS::SNS::Topic': ['sns:CreateTopic', 'sns:DeleteTopic', 'sns:GetTopicAttributes', 'sns:SetTopicAttributes', 'sns:TagResource'],
  'AWS::SNS::TopicPolicy': ['sns:SetTopicAttributes', 'sns:GetTopicAttributes'],
  'AWS::SNS::Subscription': ['sns:Subscribe', 'sns:Unsubscribe', 'sns:GetSubscriptionAttributes'],
  'AWS::KMS::Key': ['kms:CreateKey', 'kms:DescribeKey', 'kms:EnableKeyRotation', 'kms:PutKeyPolicy', 'kms:ScheduleKeyDeletion', 'kms:TagResource'],
  'AWS::CloudWatch::Alarm': ['cloudwatch:PutMetricAlarm', 'cloudwatch:DeleteAlarms', 'cloudwatch:DescribeAlarms'],
};
// What osls itself calls around the stack (create, change sets, events, outputs, removal).
const DEPLOYER_CLOUDFORMATION = [
  'cloudformation:CreateChangeSet', 'cloudformation:DescribeChangeSet', 'cloudformation:ExecuteChangeSet', 'cloudformation:DeleteChangeSet',
  'cloudformation:DescribeStacks', 'cloudformation:DescribeStackEvents', 'cloudformation:DescribeStackResource',
  'cloudformation:ListStackResources', 'cloudformation:ValidateTemplate', 'cloudformation:DeleteStack', 'cloudformation:GetTemplate',
];

/** cfn-lint from PATH or pyenv's shims; undefined when it is not installed. */
// ---------------------------------------------------------------------------------

let packageDir: string;
let defaultsDir: string;
let template: Template;
/** The template of a deploy with no --param at all. */
let defaults: Template;

async function packageStack(params: Record<string, string>): Promise<{ dir: string; template: Template }> {
  const dir = mkdtempSync(join(tmpdir(), 'stytch-rotation-package-'));
  const args = Object.entries(params).map(([key, value]) => `--param=${key}=${value}`);
  // `package` never calls AWS or the network; osls 4 has no telemetry or update checks.
  await run(process.execPath, [OSLS, 'package', '--stage', 'test', '--region', REGION, '--package', dir, ...args], {
    cwd: ROOT,
  }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`osls package failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
  return { dir, template: JSON.parse(readFileSync(join(dir, 'cloudformation-template-update-stack.json'), 'utf8')) as Template };
}

beforeAll(async () => {
  if (!existsSync(BUNDLE)) {
    await run('npm', ['run', 'build'], { cwd: ROOT });
  }
  // One after the other: osls stages its output in the project's .serverless/.
  const all = await packageStack(PACKAGE_PARAMS);
  const none = await packageStack({});
  ({ dir: packageDir, template } = all);
  ({ dir: defaultsDir, template: defaults } = none);
}, 120_000);

afterAll(() => {
  for (const dir of [packageDir, defaultsDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

const resource = (logicalId: string): Resource => {
  const found = template.Resources[logicalId];
  if (!found) throw new Error(`no resource ${logicalId} in the template`);
  return found;
};

const rolePolicy = (evaluation: Evaluation): Statement[] => {
  const role = evaluation.template.Resources.RotateStytchSecretRole;
  if (!role) throw new Error('no RotateStytchSecretRole in the template');
  const policies = evaluation.resolve(role.Properties.Policies ?? null);
  expect(policies).toHaveLength(1);
  return policyStatements(policies);
};

// The statements every variant shares.
const READ_OWN_CREDENTIALS: Statement = {
  Sid: 'ReadStytchProjectCredentials',
  Effect: 'Allow',
  Action: 'secretsmanager:GetSecretValue',
  Resource: [CREDENTIALS_SECRET],
};
const USE_OWN_STATE_TABLE: Statement = {
  Sid: 'UseOwnStateTable',
  Effect: 'Allow',
  Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Scan'],
  Resource: TABLE_ARN,
};
const WRITE_OWN_LOGS: Statement = {
  Sid: 'WriteOwnLogs',
  Effect: 'Allow',
  Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
  Resource: LOG_GROUP_ARN,
};
const ROTATION_ACTIONS = [
  'secretsmanager:DescribeSecret',
  'secretsmanager:GetSecretValue',
  'secretsmanager:PutSecretValue',
  'secretsmanager:UpdateSecretVersionStage',
];
const rotate = (resources: string | string[], tag?: string): Statement => ({
  Sid: 'RotateStytchClientSecrets',
  Effect: 'Allow',
  Action: ROTATION_ACTIONS,
  Resource: resources,
  Condition: {
    StringEquals: {
      'secretsmanager:resource/AllowRotationLambdaArn': FUNCTION_ARN,
      ...(tag === undefined ? {} : { 'aws:ResourceTag/stytch-secret-rotation': tag }),
    },
  },
});
// With a management key: the rotation of the credentials secrets themselves, and the key.
const rotateProjectSecrets = (resources: string[]): Statement => ({
  Sid: 'RotateStytchProjectSecrets',
  Effect: 'Allow',
  Action: ROTATION_ACTIONS,
  Resource: resources,
  Condition: { StringEquals: { 'secretsmanager:resource/AllowRotationLambdaArn': FUNCTION_ARN } },
});
const READ_MANAGEMENT_CREDENTIALS: Statement = {
  Sid: 'ReadStytchManagementCredentials',
  Effect: 'Allow',
  Action: 'secretsmanager:GetSecretValue',
  Resource: MANAGEMENT_CREDENTIALS,
};
const useKeys = (keys: string[]): Statement => ({
  Sid: 'UseSecretsKeysViaSecretsManager',
  Effect: 'Allow',
  Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
  Resource: keys,
  Condition: { StringEquals: { 'kms:ViaService': `secretsmanager.${REGION}.amazonaws.com` } },
});
// AWS's AWSLambdaVPCAccessExecutionRole actions; EC2's Describe calls take no ARN.
const VPC_NETWORK_INTERFACES: Statement = {
  Sid: 'ManageVpcNetworkInterfaces',
  Effect: 'Allow',
  Action: [
    'ec2:CreateNetworkInterface',
    'ec2:DescribeNetworkInterfaces',
    'ec2:DescribeSubnets',
    'ec2:DeleteNetworkInterface',
    'ec2:AssignPrivateIpAddresses',
    'ec2:UnassignPrivateIpAddresses',
  ],
  Resource: '*',
};

/** Whether an IAM resource pattern (`*` and `?` wildcards) matches an ARN. */
const arnMatches = (pattern: string, arn: string): boolean =>
  new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(arn);

/** Every combination of these parameter choices, as override sets. */
function combinations(choices: Record<string, string[]>): Record<string, string>[] {
  return Object.entries(choices).reduce<Record<string, string>[]>(
    (sets, [name, values]) => sets.flatMap((set) => values.map((value) => ({ ...set, [name]: value }))),
    [{}],
  );
}

describe('Deployment: serverless.yml packaged by osls', () => {
  describe('IAM: execution role', () => {
    it('grants exactly rotation, credentials, management key, KMS, VPC, state table and logs when every option is on', () => {
      // Act
      const statements = rolePolicy(new Evaluation(template));

      // Assess
      expect(statements).toEqual([
        rotate([EXAMPLE_SECRET, ROTATED_1, ROTATED_2], 'stytch-prod'),
        { ...READ_OWN_CREDENTIALS, Resource: [CREDENTIALS_SECRET, OTHER_CREDENTIALS] },
        rotateProjectSecrets([CREDENTIALS_SECRET, OTHER_CREDENTIALS]),
        READ_MANAGEMENT_CREDENTIALS,
        useKeys([KMS_KEY, EXTRA_KMS_KEY]),
        VPC_NETWORK_INTERFACES,
        USE_OWN_STATE_TABLE,
        WRITE_OWN_LOGS,
      ]);
    });

    it('rotates, by default, any secret of the account and region whose rotation function is this one (AWS\'s pattern)', () => {
      // Act: the template of `npm run deploy` with no --param.
      const statements = rolePolicy(new Evaluation(defaults));

      // Assess: no list to outgrow (a parameter holds 4,096 bytes, ~45 ARNs), no redeploy
      // per secret; the condition keeps it to secrets attached to this function.
      expect(statements).toEqual([rotate(ALL_SECRETS), READ_OWN_CREDENTIALS, USE_OWN_STATE_TABLE, WRITE_OWN_LOGS]);
    });

    it('narrows rotation to an explicit list, or to a tag, when asked', () => {
      const only = (overrides: Record<string, string>) =>
        rolePolicy(new Evaluation(defaults, overrides)).find((statement) => statement.Sid === 'RotateStytchClientSecrets');

      expect(only({ RotatedSecretArns: `${ROTATED_1},${ROTATED_2}` })).toEqual(rotate([ROTATED_1, ROTATED_2]));
      expect(only({ RotatedSecretTagValue: 'stytch-prod' })).toEqual(rotate(ALL_SECRETS, 'stytch-prod'));
      expect(only({ CreateExampleSecret: 'true', RotatedSecretArns: ROTATED_1 })).toEqual(rotate([EXAMPLE_SECRET, ROTATED_1]));
    });

    it('tags the example secret so that a tag-scoped role still rotates it', () => {
      const tags = (value: string) =>
        (new Evaluation(template, { RotatedSecretTagValue: value }).resolve(resource('ExampleStytchClientSecret').Properties) as JsonObject)
          .Tags;

      expect(tags('stytch-prod')).toEqual([{ Key: 'stytch-secret-rotation', Value: 'stytch-prod' }]);
      expect(tags('')).toBeUndefined();
    });

    it('loses no permission on any combination of parameters: every attached secret stays rotatable', () => {
      // Prepare: every combination of the parameters that shape the role (512 stacks).
      const sets = combinations({
        RotatedSecretArns: ['', ROTATED_1],
        RotatedSecretTagValue: ['', 'stytch-prod'],
        CreateExampleSecret: ['true', 'false'],
        ExtraCredentialsSecretArns: ['', OTHER_CREDENTIALS],
        ExistingCredentialsSecretArn: ['', RETAINED_CREDENTIALS],
        ManagementCredentialsSecretArn: ['', MANAGEMENT_CREDENTIALS],
        KmsKeyArn: ['', KMS_KEY],
        ExtraKmsKeyArns: ['', EXTRA_KMS_KEY],
        SubnetIds: ['', SUBNETS],
      });
      expect(sets).toHaveLength(512);

      for (const overrides of sets) {
        const label = JSON.stringify(overrides);
        const evaluation = new Evaluation(template, { ...overrides, SecurityGroupIds: overrides.SubnetIds ? SECURITY_GROUP : '' });
        const statements = rolePolicy(evaluation);
        const bySid = new Map(statements.map((statement) => [statement.Sid, statement]));
        const grants = (sid: string, arn: string) => asList(bySid.get(sid)?.Resource ?? []).some((pattern) => arnMatches(pattern, arn));
        // A secret with no tag (the stack's credentials secret has none) that this
        // function is attached to: some statement allows all four rotation calls on it.
        const rotatable = (arn: string) =>
          statements.some(
            (statement) =>
              ROTATION_ACTIONS.every((action) => asList(statement.Action).includes(action)) &&
              asList(statement.Resource).some((pattern) => arnMatches(pattern, arn)) &&
              JSON.stringify(statement.Condition) === JSON.stringify({ StringEquals: { 'secretsmanager:resource/AllowRotationLambdaArn': FUNCTION_ARN } }),
          );

        // Assess: the rotation statement is always there, with its four actions and its
        // condition; it covers what the parameters name, or everything when they name nothing.
        const rotation = bySid.get('RotateStytchClientSecrets');
        expect(rotation?.Action, label).toEqual(ROTATION_ACTIONS);
        expect(rotation?.Condition?.StringEquals, label).toMatchObject({ 'secretsmanager:resource/AllowRotationLambdaArn': FUNCTION_ARN });
        if (overrides.RotatedSecretArns) expect(grants('RotateStytchClientSecrets', ROTATED_1), label).toBe(true);
        else expect(rotation?.Resource, label).toBe(ALL_SECRETS);
        if (overrides.CreateExampleSecret === 'true') expect(grants('RotateStytchClientSecrets', EXAMPLE_SECRET), label).toBe(true);
        // The credentials secret in use, and every extra one, are readable.
        const credentials = overrides.ExistingCredentialsSecretArn || CREDENTIALS_SECRET;
        expect(grants('ReadStytchProjectCredentials', credentials), label).toBe(true);
        if (overrides.ExtraCredentialsSecretArns) expect(grants('ReadStytchProjectCredentials', OTHER_CREDENTIALS), label).toBe(true);
        // With a management key, the function may rotate the credentials secret it uses
        // (and every extra one), whatever narrows the first statement, and read the key,
        // only read it. Without one, neither statement exists.
        if (overrides.ManagementCredentialsSecretArn) {
          expect(rotatable(credentials), label).toBe(true);
          if (overrides.ExtraCredentialsSecretArns) expect(rotatable(OTHER_CREDENTIALS), label).toBe(true);
          expect(bySid.get('ReadStytchManagementCredentials'), label).toEqual(READ_MANAGEMENT_CREDENTIALS);
        } else {
          expect(bySid.has('RotateStytchProjectSecrets'), label).toBe(false);
          expect(bySid.has('ReadStytchManagementCredentials'), label).toBe(false);
        }
        // Every key given is usable, and a KMS statement exists only with a key.
        for (const key of [overrides.KmsKeyArn, overrides.ExtraKmsKeyArns].filter(Boolean) as string[]) {
          expect(grants('UseSecretsKeysViaSecretsManager', key), label).toBe(true);
        }
        expect(bySid.has('UseSecretsKeysViaSecretsManager'), label).toBe(!!(overrides.KmsKeyArn || overrides.ExtraKmsKeyArns));
        expect(bySid.has('ManageVpcNetworkInterfaces'), label).toBe(!!overrides.SubnetIds);
        expect(bySid.get('UseOwnStateTable'), label).toEqual(USE_OWN_STATE_TABLE);
        expect(bySid.get('WriteOwnLogs'), label).toEqual(WRITE_OWN_LOGS);
        // No statement ends up with an empty resource (IAM would refuse the policy).
        for (const statement of statements) {
          expect(asList(statement.Resource).every((arn) => arn.length > 0), `${label} ${statement.Sid}`).toBe(true);
        }
      }
    });

    it('lets the function rotate the credentials secret it uses once given a management key, even where rotation is narrowed', () => {
      // Prepare: a narrowed role leaves the stack's credentials secret out (its ARN's
      // suffix is unknown before the first deploy, and it carries no tag).
      const narrowed = { RotatedSecretArns: ROTATED_1, RotatedSecretTagValue: 'stytch-prod' };
      const projectSecrets = (overrides: Record<string, string>) =>
        rolePolicy(new Evaluation(defaults, overrides)).filter((statement) =>
          ['RotateStytchProjectSecrets', 'ReadStytchManagementCredentials'].includes(statement.Sid ?? ''),
        );

      // Act / Assess: the rotation statement no longer covers it...
      const rotation = rolePolicy(new Evaluation(defaults, narrowed)).find((statement) => statement.Sid === 'RotateStytchClientSecrets');
      expect(asList(rotation?.Resource ?? []).some((pattern) => arnMatches(pattern, CREDENTIALS_SECRET))).toBe(false);
      // ...the management key's statements do, with the same condition, and only with a key.
      expect(projectSecrets(narrowed)).toEqual([]);
      expect(projectSecrets({ ...narrowed, ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS })).toEqual([
        rotateProjectSecrets([CREDENTIALS_SECRET]),
        READ_MANAGEMENT_CREDENTIALS,
      ]);
      expect(
        projectSecrets({ ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS, ExistingCredentialsSecretArn: RETAINED_CREDENTIALS, ExtraCredentialsSecretArns: OTHER_CREDENTIALS }),
      ).toEqual([rotateProjectSecrets([RETAINED_CREDENTIALS, OTHER_CREDENTIALS]), READ_MANAGEMENT_CREDENTIALS]);
      expect(defaults.Parameters.ManagementCredentialsSecretArn?.Default).toBe('');
    });

    it('takes only a full secret ARN for managementCredentialsSecretArn: GetSecretValue names it exactly', () => {
      const accepts = (value: string) => {
        try {
          new Evaluation(defaults, { ManagementCredentialsSecretArn: value });
          return true;
        } catch {
          return false;
        }
      };

      const good = ['', MANAGEMENT_CREDENTIALS, 'arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:stytch/management-credentials-a1B2c3'];
      expect(good.filter(accepts)).toEqual(good);
      expect(
        [
          'stytch/management-credentials',
          `${SM}:stytch/management-credentials`,
          `${SM}:stytch/management-credentials-??????`,
          `${SM}:*`,
          `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
        ].filter(accepts),
      ).toEqual([]);
    });

    it('keeps the rotation statement when a redeploy omits rotatedSecretArns', () => {
      // Prepare: the first deploy listed secrets; the next one forgot the param.
      const before = rolePolicy(new Evaluation(defaults, { RotatedSecretArns: ROTATED_1 }));
      const after = rolePolicy(new Evaluation(defaults));

      // Assess: the secret is still rotatable (by the default statement).
      const rotation = after.find((statement) => statement.Sid === 'RotateStytchClientSecrets');
      expect(before.find((statement) => statement.Sid === 'RotateStytchClientSecrets')?.Resource).toEqual([ROTATED_1]);
      expect(asList(rotation?.Resource ?? []).some((pattern) => arnMatches(pattern, ROTATED_1))).toBe(true);
    });

    it('takes KMS keys as one key and a list, usable only through Secrets Manager', () => {
      const keys = (overrides: Record<string, string>) =>
        rolePolicy(new Evaluation(defaults, overrides)).find((statement) => statement.Sid === 'UseSecretsKeysViaSecretsManager');

      expect(keys({})).toBeUndefined();
      expect(keys({ KmsKeyArn: KMS_KEY })).toEqual(useKeys([KMS_KEY]));
      expect(keys({ ExtraKmsKeyArns: `${KMS_KEY},${EXTRA_KMS_KEY}` })).toEqual(useKeys([KMS_KEY, EXTRA_KMS_KEY]));
      expect(keys({ KmsKeyArn: KMS_KEY, ExtraKmsKeyArns: EXTRA_KMS_KEY })).toEqual(useKeys([KMS_KEY, EXTRA_KMS_KEY]));
    });

    it('attaches the permissions boundary only when one is given', () => {
      const boundary = (template: Template, overrides: Record<string, string> = {}) =>
        (new Evaluation(template, overrides).resolve(template.Resources.RotateStytchSecretRole?.Properties ?? null) as JsonObject)
          .PermissionsBoundary;

      expect(boundary(defaults)).toBeUndefined();
      expect(boundary(template)).toBe(BOUNDARY);
      expect(() => new Evaluation(defaults, { PermissionsBoundaryArn: 'platform-boundary' })).toThrow(/does not match/);
    });

    it('builds the function ARN of the rotation condition without a GetAtt (no dependency cycle)', () => {
      const role = JSON.stringify(resource('RotateStytchSecretRole'));

      expect(role).not.toContain('RotateStytchSecretLambdaFunction');
      expect(role).toContain(
        '"arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:stytch-secret-rotation-test"',
      );
    });

    it('allows on the state table exactly the DynamoDB calls the code makes, on that table only', async () => {
      const table = rolePolicy(new Evaluation(template)).filter((statement) =>
        asList(statement.Action).some((action) => action.startsWith('dynamodb:')),
      );

      expect(table).toEqual([USE_OWN_STATE_TABLE]);
      // No index ARN (`table/NAME/index/...`), no other table, no wildcard.
      expect(table[0]?.Resource).toBe(TABLE_ARN);
      // The code calls GetItem, PutItem, UpdateItem, DeleteItem and Scan: a new call in
      // the code fails here until the role allows it, and an unused grant too.
      const calls = await awsActionsOf('functions/rotate-stytch-secret/index.ts');
      expect(calls.filter((action) => action.startsWith('dynamodb:'))).toEqual([...asList(USE_OWN_STATE_TABLE.Action)].sort());
      expect(resource('RotateStytchSecretRole').Properties.Policies).toMatchObject([
        { PolicyDocument: { Statement: expect.arrayContaining([{ ...USE_OWN_STATE_TABLE, Resource: { 'Fn::GetAtt': ['RotationStateTable', 'Arn'] } }]) } },
      ]);
    });

    it('lets only Lambda assume the role, and attaches no managed policy', () => {
      const role = resource('RotateStytchSecretRole');

      expect(role.Properties.AssumeRolePolicyDocument).toEqual({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      });
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    });

    it('allows no wildcard action, and a wildcard resource only where AWS offers nothing narrower', () => {
      // Prepare: every policy in the stack (role, trust, topic and bucket policies), for
      // the default stack and the one with every option. The alerts key's policy
      // (KeyPolicy, where "*" means the key itself) is pinned statement by statement under Alerts.
      for (const evaluation of [new Evaluation(defaults), new Evaluation(template)]) {
        const created = Object.fromEntries(
          Object.entries(evaluation.template.Resources).filter(([logicalId]) => evaluation.creates(logicalId)),
        );
        const statements = policyStatements(evaluation.resolve(created as unknown as Json));
        const allows = statements.filter((statement) => statement.Effect === 'Allow');

        // Assess: log group ARNs end in `:*` (the form covering the streams Lambda names
        // at run time); rotation of `secret:*` only under the AllowRotationLambdaArn
        // condition; "*" only for EC2's network-interface calls, which take no ARN.
        expect(allows.length).toBeGreaterThan(0);
        for (const statement of allows) {
          for (const action of asList(statement.Action)) expect(action).not.toContain('*');
          for (const arn of asList(statement.Resource ?? [])) {
            const allowed =
              !arn.includes('*') ||
              arn === LOG_GROUP_ARN ||
              (arn === ALL_SECRETS && statement.Sid === 'RotateStytchClientSecrets' &&
                statement.Condition?.StringEquals?.['secretsmanager:resource/AllowRotationLambdaArn' as never] === FUNCTION_ARN) ||
              (arn === '*' && statement.Sid === 'ManageVpcNetworkInterfaces');
            expect(allowed, `${statement.Sid}: ${arn}`).toBe(true);
          }
          expect(JSON.stringify(statement.Principal ?? null)).not.toContain('"*"');
        }
      }
    });
  });

  describe('Lambda', () => {
    it('runs the bundle on nodejs22.x, arm64, with the role from infra/function.yml', () => {
      const fn = resource('RotateStytchSecretLambdaFunction');

      expect(fn.Properties).toMatchObject({
        FunctionName: FUNCTION_NAME,
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'dist/rotate-stytch-secret/index.handler',
        MemorySize: 256,
        Timeout: 60,
        Role: { 'Fn::GetAtt': ['RotateStytchSecretRole', 'Arn'] },
      });
    });

    it('reserves concurrency only when asked: any reservation fails the deploy on a new account', () => {
      const reserved = (template: Template, overrides: Record<string, string> = {}) =>
        (new Evaluation(template, overrides).resolve(template.Resources.RotateStytchSecretLambdaFunction?.Properties ?? null) as JsonObject)
          .ReservedConcurrentExecutions;
      const accepts = (value: string) => {
        try {
          new Evaluation(defaults, { ReservedConcurrency: value });
          return true;
        } catch {
          return false;
        }
      };

      // Lambda keeps 100 unreserved executions per account; a new account's quota is often 10.
      expect(reserved(defaults)).toBeUndefined();
      expect(reserved(template)).toBe('10');
      expect(reserved(defaults, { ReservedConcurrency: '25' })).toBe('25');
      // 0 would throttle the function completely; it is refused, as is anything not a count.
      expect(['1', '10', '9999'].filter(accepts)).toEqual(['1', '10', '9999']);
      expect(['0', '-1', '10.5', 'ten', '10000'].filter(accepts)).toEqual([]);
    });

    it('runs in a VPC only when subnets are given, with their security groups', () => {
      const vpc = (template: Template, overrides: Record<string, string> = {}) =>
        (new Evaluation(template, overrides).resolve(template.Resources.RotateStytchSecretLambdaFunction?.Properties ?? null) as JsonObject)
          .VpcConfig;

      expect(vpc(defaults)).toBeUndefined();
      expect(vpc(template)).toEqual({ SubnetIds: SUBNETS.split(','), SecurityGroupIds: [SECURITY_GROUP] });
      expect(rolePolicy(new Evaluation(defaults)).map((statement) => statement.Sid)).not.toContain('ManageVpcNetworkInterfaces');
    });

    it('packages the built bundle and its source map, nothing else, where the handler points', () => {
      const entries = zipEntries(join(packageDir, 'rotateStytchSecret.zip')).sort();

      expect(entries).toEqual(['dist/rotate-stytch-secret/index.mjs', 'dist/rotate-stytch-secret/index.mjs.map']);
    });

    it('sets the environment the function reads', () => {
      const variables = (overrides: Record<string, string>) =>
        (new Evaluation(template, overrides).resolve(resource('RotateStytchSecretLambdaFunction').Properties.Environment ?? null) as JsonObject)
          .Variables;

      expect(variables({ ExistingCredentialsSecretArn: RETAINED_CREDENTIALS })).toMatchObject({ STYTCH_CREDENTIALS_SECRET_ID: RETAINED_CREDENTIALS });
      expect(variables({ ManagementCredentialsSecretArn: '' })).toEqual({
        STYTCH_CREDENTIALS_SECRET_ID: CREDENTIALS_SECRET,
        POWERTOOLS_SERVICE_NAME: 'stytch-secret-rotation',
        POWERTOOLS_METRICS_NAMESPACE: 'StytchSecretRotation',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ROTATION_STATE_TABLE: TABLE_NAME,
        PREVIOUS_SECRET_GRACE_SECONDS: '3600',
        NODE_OPTIONS: '--enable-source-maps',
      });
      expect(variables({ StytchApiBaseUrl: 'https://test.stytch.com', LogLevel: 'DEBUG', PreviousSecretGraceSeconds: '0' })).toMatchObject({
        STYTCH_API_BASE_URL: 'https://test.stytch.com',
        POWERTOOLS_LOG_LEVEL: 'DEBUG',
        PREVIOUS_SECRET_GRACE_SECONDS: '0',
      });
      // The management key's secret only when given; a deploy with no --param has none.
      expect(variables({})).toMatchObject({ STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: MANAGEMENT_CREDENTIALS });
      expect(
        (new Evaluation(defaults).resolve(defaults.Resources.RotateStytchSecretLambdaFunction?.Properties.Environment ?? null) as JsonObject).Variables,
      ).not.toHaveProperty('STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID');
    });

    it('takes the overlap window from previousSecretGraceSeconds: 3600 by default, 0 to a week, as the function accepts', () => {
      const window = template.Parameters.PreviousSecretGraceSeconds;
      const accepts = (value: string) => {
        try {
          new Evaluation(template, { PreviousSecretGraceSeconds: value });
          return true;
        } catch {
          return false;
        }
      };

      expect(window).toMatchObject({ Type: 'Number', MinValue: 0, MaxValue: 604800 });
      expect(String(window?.Default)).toBe('3600');
      expect(['0', '1', '3600', '604800'].filter(accepts)).toEqual(['0', '1', '3600', '604800']);
      // Above a week the function refuses every event: the deploy fails instead.
      expect(['604801', '-1', 'an hour'].filter(accepts)).toEqual([]);
    });

    it('lets Secrets Manager of this account and the sweep rule invoke it, and nobody else', () => {
      const permissions = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Lambda::Permission');

      expect(Object.fromEntries(permissions)).toEqual({
        RotateStytchSecretInvokePermission: {
          Type: 'AWS::Lambda::Permission',
          Properties: {
            FunctionName: { 'Fn::GetAtt': ['RotateStytchSecretLambdaFunction', 'Arn'] },
            Action: 'lambda:InvokeFunction',
            Principal: 'secretsmanager.amazonaws.com',
            SourceAccount: { Ref: 'AWS::AccountId' },
          },
        },
        // EventBridge only for the one rule: without SourceArn any rule, in any account,
        // could start sweeps.
        RetirementSweepInvokePermission: {
          Type: 'AWS::Lambda::Permission',
          Properties: {
            FunctionName: { 'Fn::GetAtt': ['RotateStytchSecretLambdaFunction', 'Arn'] },
            Action: 'lambda:InvokeFunction',
            Principal: 'events.amazonaws.com',
            SourceArn: { 'Fn::GetAtt': ['RetirementSweepRule', 'Arn'] },
          },
        },
      });
      expect(new Evaluation(template).resolve(resource('RetirementSweepInvokePermission').Properties)).toMatchObject({
        FunctionName: FUNCTION_ARN,
        SourceArn: SWEEP_RULE_ARN,
      });
    });

    it('keeps its logs in its own log group, 90 days by default', () => {
      const logGroup = new Evaluation(template).resolve(resource('RotateStytchSecretLogGroup') as unknown as Json);

      expect(logGroup).toEqual({
        Type: 'AWS::Logs::LogGroup',
        Properties: { LogGroupName: `/aws/lambda/${FUNCTION_NAME}`, RetentionInDays: '90' },
      });
    });
  });

  describe('Secrets', () => {
    it('creates the credentials secret without a value the template knows', () => {
      const secret = resource('StytchCredentialsSecret');

      expect(secret.Condition).toBe('CreatesCredentialsSecret');
      expect(new Evaluation(defaults).creates('StytchCredentialsSecret')).toBe(true);
      expect(secret.Properties.SecretString).toBeUndefined();
      expect(secret.Properties.GenerateSecretString).toMatchObject({ GenerateStringKey: 'secret' });
    });

    it('keeps both secrets on delete, except when the deploy that created them rolls back', () => {
      // A failed first deploy deletes what it created (nothing is in it yet), so the
      // retry does not hit "already exists" on the fixed names.
      for (const logicalId of ['StytchCredentialsSecret', 'ExampleStytchClientSecret']) {
        expect(resource(logicalId), logicalId).toMatchObject({ DeletionPolicy: 'RetainExceptOnCreate', UpdateReplacePolicy: 'Retain' });
      }
    });

    it('re-uses an existing credentials secret instead of creating one, when given its ARN', () => {
      // Prepare: a removed stack kept its credentials secret; its name is taken.
      const evaluation = new Evaluation(defaults, { ExistingCredentialsSecretArn: RETAINED_CREDENTIALS });
      const outputs = evaluation.resolve(defaults.Outputs.StytchCredentialsSecretArn as unknown as Json) as JsonObject;

      // Assess: nothing of that name is created; the function reads, and may read, the given one.
      expect(evaluation.creates('StytchCredentialsSecret')).toBe(false);
      expect(rolePolicy(evaluation).find((statement) => statement.Sid === 'ReadStytchProjectCredentials')?.Resource).toEqual([
        RETAINED_CREDENTIALS,
      ]);
      expect(outputs).toMatchObject({ Value: RETAINED_CREDENTIALS });
      // Only a full secret ARN (with its random suffix) can name it: GetSecretValue takes no wildcard.
      for (const bad of ['stytch-secret-rotation/test/stytch-project-credentials', `${SM}:stytch-secret-rotation/test/stytch-project-credentials-??????`]) {
        expect(() => new Evaluation(defaults, { ExistingCredentialsSecretArn: bad }), bad).toThrow(/does not match/);
      }
    });

    it('creates the example secret, with a placeholder value, only when CreateExampleSecret is true', () => {
      const secret = resource('ExampleStytchClientSecret');

      expect(secret.Condition).toBe('WithExampleSecret');
      expect(JSON.parse(String(secret.Properties.SecretString))).toEqual({
        client_id: 'REPLACE_WITH_CLIENT_ID',
        client_secret: 'REPLACE_WITH_CLIENT_SECRET',
      });
      expect(new Evaluation(template, { CreateExampleSecret: 'false' }).creates('ExampleStytchClientSecret')).toBe(false);
      expect(new Evaluation(template, { CreateExampleSecret: 'true' }).creates('ExampleStytchClientSecret')).toBe(true);
    });

    it('encrypts both secrets with the given key, if any', () => {
      for (const logicalId of ['StytchCredentialsSecret', 'ExampleStytchClientSecret']) {
        const properties = (kms: string) =>
          new Evaluation(template, { KmsKeyArn: kms }).resolve(resource(logicalId).Properties) as JsonObject;

        expect(properties(KMS_KEY).KmsKeyId).toBe(KMS_KEY);
        expect(properties('')).not.toHaveProperty('KmsKeyId');
      }
    });

    it('schedules the example secret on this function without rotating the placeholder at once', () => {
      const schedule = resource('ExampleStytchClientSecretRotation');

      expect(schedule.Condition).toBe('WithExampleSecret');
      expect([schedule.DependsOn].flat()).toEqual(['RotateStytchSecretInvokePermission']);
      expect(new Evaluation(template).resolve(schedule.Properties)).toEqual({
        SecretId: EXAMPLE_SECRET,
        RotationLambdaARN: FUNCTION_ARN,
        RotationRules: { ScheduleExpression: 'rate(30 days)', Duration: '2h' },
        RotateImmediatelyOnUpdate: false,
      });
    });

    it('accepts a rotation window of 1h to 24h, the range Secrets Manager allows', () => {
      const accepts = (value: string) => {
        try {
          new Evaluation(template, { ExampleRotationWindow: value });
          return true;
        } catch {
          return false;
        }
      };

      expect(['1h', '2h', '9h', '10h', '19h', '24h'].filter(accepts)).toEqual(['1h', '2h', '9h', '10h', '19h', '24h']);
      expect(['0h', '25h', '30h', '99h', '01h', '2', '2d', ''].filter(accepts)).toEqual([]);
    });
  });

  describe('State table', () => {
    it('is on demand, keyed by pk (String) alone, with TTL on expires_at, PITR and KMS encryption', () => {
      const table = resource('RotationStateTable');

      expect(table.Type).toBe('AWS::DynamoDB::Table');
      expect(table.Condition).toBeUndefined();
      expect(table.Properties).toEqual({
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
        // No RANGE key, no index: the function reads and writes by pk and scans.
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        SSESpecification: { SSEEnabled: true },
        DeletionProtectionEnabled: true,
      });
      // CloudFormation names it: no TableName, so stacks and stages never collide.
      expect(table.Properties).not.toHaveProperty('TableName');
    });

    it('is kept when the stack is deleted or the table replaced: it holds bindings and due retirements', () => {
      expect(resource('RotationStateTable')).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });
  });

  describe('Retirement sweep', () => {
    it('invokes the function on the sweepSchedule, rate(5 minutes) by default', () => {
      const rule = resource('RetirementSweepRule');
      const properties = (overrides: Record<string, string> = {}) => new Evaluation(template, overrides).resolve(rule.Properties) as JsonObject;

      expect(rule.Type).toBe('AWS::Events::Rule');
      expect(template.Parameters.SweepSchedule?.Default).toBe('rate(5 minutes)');
      expect(properties()).toEqual({
        Description: expect.any(String),
        ScheduleExpression: 'rate(5 minutes)',
        State: 'ENABLED',
        Targets: [{ Id: 'retirement-sweep', Arn: FUNCTION_ARN }],
      });
      expect(properties({ SweepSchedule: 'cron(0/10 * * * ? *)' }).ScheduleExpression).toBe('cron(0/10 * * * ? *)');
      expect(() => new Evaluation(template, { SweepSchedule: 'every 5 minutes' })).toThrow(/does not match/);
    });

    it('sends the standard scheduled event, which the function takes for a sweep', () => {
      const [target] = resource('RetirementSweepRule').Properties.Targets as JsonObject[];

      // No Input, InputPath or InputTransformer: EventBridge then sends its own event.
      expect(Object.keys(target ?? {}).sort()).toEqual(['Arn', 'Id']);
      const event = {
        version: '0',
        id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: ACCOUNT,
        time: '2026-01-01T00:05:00Z',
        region: REGION,
        resources: [SWEEP_RULE_ARN],
        detail: {},
      };
      expect(isScheduledEvent(event)).toBe(true);
      expect(scheduledEventSchema.safeParse(event).success).toBe(true);
    });
  });

  describe('Alerts', () => {
    it('sends rotation failures from EventBridge to the alerts topic', () => {
      const rule = resource('RotationFailureRule');

      expect(rule.Properties.EventPattern).toEqual({
        source: ['aws.secretsmanager'],
        'detail-type': ['AWS Service Event via CloudTrail'],
        detail: { eventName: ['RotationFailed', 'TestRotationFailed', 'RotationAbandoned'] },
      });
      expect(rule.Properties.State).toBe('ENABLED');
      expect(new Evaluation(template).resolve(rule.Properties.Targets ?? null)).toEqual([{ Id: 'rotation-alerts-topic', Arn: TOPIC_ARN }]);
    });

    it('sends everything to an existing topic instead when given one, and leaves its policy and key alone', () => {
      // Prepare
      const evaluation = new Evaluation(template, { AlertsTopicArn: EXISTING_TOPIC });
      const resolved = (id: string) => evaluation.resolve(resource(id).Properties) as JsonObject;

      // Assess: no topic, no key, and above all no TopicPolicy, which would replace the
      // policy its owner gave it.
      for (const id of ['RotationAlertsTopic', 'RotationAlertsKey', 'RotationAlertsTopicPolicy']) expect(evaluation.creates(id), id).toBe(false);
      expect(resolved('RotationFailureRule').Targets).toEqual([{ Id: 'rotation-alerts-topic', Arn: EXISTING_TOPIC }]);
      expect(resolved('RotateStytchSecretErrorsAlarm').AlarmActions).toEqual([EXISTING_TOPIC]);
      expect(resolved('RotationAlertsEmail').TopicArn).toEqual(EXISTING_TOPIC);
      expect(evaluation.resolve(template.Outputs.RotationAlertsTopicArn?.Value ?? null)).toBe(EXISTING_TOPIC);
      expect(template.Outputs.RotationAlertsKeyArn?.Condition).toBe('CreatesAlertsTopic');
      // Only a topic ARN is taken.
      expect(() => new Evaluation(template, { AlertsTopicArn: 'rotation-alerts' })).toThrow(/AlertsTopicArn/);
      expect(new Evaluation(template).creates('RotationAlertsTopicPolicy')).toBe(true);
    });

    it('lets only that rule and the errors alarm publish to the topic', () => {
      const policy = new Evaluation(template).resolve(resource('RotationAlertsTopicPolicy').Properties);

      expect(policy).toEqual({
        Topics: [TOPIC_ARN],
        PolicyDocument: {
          Version: '2012-10-17',
          Statement: [
            {
              Sid: 'RotationFailureEvents',
              Effect: 'Allow',
              Principal: { Service: 'events.amazonaws.com' },
              Action: 'sns:Publish',
              Resource: TOPIC_ARN,
              Condition: { ArnEquals: { 'aws:SourceArn': RULE_ARN } },
            },
            {
              Sid: 'RotationFunctionErrorsAlarm',
              Effect: 'Allow',
              Principal: { Service: 'cloudwatch.amazonaws.com' },
              Action: 'sns:Publish',
              Resource: TOPIC_ARN,
              Condition: { ArnEquals: { 'aws:SourceArn': ALARM_ARN } },
            },
          ],
        },
      });
    });

    it('alarms on any function error within 5 minutes', () => {
      expect(new Evaluation(template).resolve(resource('RotateStytchSecretErrorsAlarm').Properties)).toEqual({
        AlarmName: `${FUNCTION_NAME}-errors`,
        AlarmDescription: expect.any(String),
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: FUNCTION_NAME }],
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [TOPIC_ARN],
      });
    });

    it('subscribes the e-mail address only when one is given', () => {
      const subscription = resource('RotationAlertsEmail');

      expect(subscription.Condition).toBe('HasAlarmEmail');
      expect(new Evaluation(template).resolve(subscription.Properties)).toEqual({
        TopicArn: TOPIC_ARN,
        Protocol: 'email',
        Endpoint: 'rotation-alerts@example.com',
      });
      expect(new Evaluation(template, { AlarmEmail: '' }).creates('RotationAlertsEmail')).toBe(false);
      // SNS decrypts for delivery: the subscription is the same whichever key encrypts.
      expect(new Evaluation(template, { AlertsKmsKeyArn: OWN_ALERTS_KEY }).resolve(subscription.Properties)).toEqual(
        new Evaluation(template).resolve(subscription.Properties),
      );
    });

    describe('encryption of the topic', () => {
      const keyPolicy = (): Statement[] => {
        const properties = new Evaluation(template).resolve(resource('RotationAlertsKey').Properties) as JsonObject;
        return (properties.KeyPolicy as unknown as { Statement: Statement[] }).Statement;
      };

      it('encrypts the topic with a key the stack creates, by default', () => {
        const evaluation = new Evaluation(template);

        expect(template.Parameters.AlertsKmsKeyArn?.Default).toBe('');
        expect(evaluation.condition('CreatesAlertsKey')).toBe(true);
        expect(evaluation.creates('RotationAlertsKey')).toBe(true);
        expect((evaluation.resolve(resource('RotationAlertsTopic').Properties) as JsonObject).KmsMasterKeyId).toBe(
          STACK_ALERTS_KEY,
        );
      });

      it('encrypts the topic with the given key instead, and then creates none', () => {
        const evaluation = new Evaluation(template, { AlertsKmsKeyArn: OWN_ALERTS_KEY });

        expect(evaluation.condition('CreatesAlertsKey')).toBe(false);
        expect(evaluation.creates('RotationAlertsKey')).toBe(false);
        expect((evaluation.resolve(resource('RotationAlertsTopic').Properties) as JsonObject).KmsMasterKeyId).toBe(
          OWN_ALERTS_KEY,
        );
      });

      it('takes only a key ARN for alertsKmsKeyArn, so never alias/aws/sns, which no publisher here can use', () => {
        const parameter = template.Parameters.AlertsKmsKeyArn;
        const accepts = (value: string) => {
          try {
            new Evaluation(template, { AlertsKmsKeyArn: value });
            return true;
          } catch {
            return false;
          }
        };

        expect(parameter).toMatchObject({
          Type: 'String',
          AllowedPattern: '^$|^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+$',
        });
        const keys = [
          '',
          OWN_ALERTS_KEY,
          'arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab',
          'arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        ];
        expect(keys.filter(accepts)).toEqual(keys);
        expect(
          [
            'alias/aws/sns',
            `arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/sns`,
            `arn:aws:kms:${REGION}:${ACCOUNT}:alias/my-alerts-key`,
            '1234abcd-12ab-34cd-56ef-1234567890ab',
            `arn:aws:sns:${REGION}:${ACCOUNT}:some-topic`,
            ` ${OWN_ALERTS_KEY}`,
          ].filter(accepts),
        ).toEqual([]);
      });

      it('rotates the key it creates, a symmetric key in this region only', () => {
        const key = resource('RotationAlertsKey');

        expect(key.Type).toBe('AWS::KMS::Key');
        expect(key.Condition).toBe('CreatesAlertsKey');
        expect(key.Properties.EnableKeyRotation).toBe(true);
        // SNS takes symmetric encryption keys only: the default spec, enabled, one region.
        expect(key.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT').toBe('SYMMETRIC_DEFAULT');
        expect(key.Properties.KeyUsage ?? 'ENCRYPT_DECRYPT').toBe('ENCRYPT_DECRYPT');
        expect(key.Properties.Enabled ?? true).toBe(true);
        expect(key.Properties.MultiRegion ?? false).toBe(false);
      });

      it('lets the account administer the key, and the two publishers use it, the alarm only for itself', () => {
        expect(keyPolicy()).toEqual([
          {
            Sid: 'AccountAdministersKeyThroughIam',
            Effect: 'Allow',
            Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
            Action: 'kms:*',
            Resource: '*',
          },
          // No aws:SourceArn / aws:SourceAccount: SNS does not support them in a KMS
          // policy for EventBridge-to-encrypted topics, and publishing would fail.
          {
            Sid: 'RotationFailureEventsPublish',
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: ['kms:GenerateDataKey*', 'kms:Decrypt'],
            Resource: '*',
          },
          {
            Sid: 'RotationFunctionErrorsAlarmPublish',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:GenerateDataKey*', 'kms:Decrypt'],
            Resource: '*',
            Condition: {
              StringEquals: { 'aws:SourceAccount': ACCOUNT },
              ArnEquals: { 'aws:SourceArn': ALARM_ARN },
            },
          },
        ]);
      });

      it('names the alarm by the ARN its AlarmName gives, without depending on the alarm or the topic', () => {
        const key = resource('RotationAlertsKey');
        const alarmName = new Evaluation(template).resolve(resource('RotateStytchSecretErrorsAlarm').Properties.AlarmName ?? null);
        const condition = keyPolicy().find((statement) => statement.Sid === 'RotationFunctionErrorsAlarmPublish')?.Condition;

        expect(condition?.ArnEquals).toEqual({ 'aws:SourceArn': `arn:aws:cloudwatch:${REGION}:${ACCOUNT}:alarm:${String(alarmName)}` });
        // The topic needs the key, and the alarm the topic: a reference back is a cycle.
        const text = JSON.stringify(key);
        for (const logicalId of ['RotateStytchSecretErrorsAlarm', 'RotationAlertsTopic', 'RotationFailureRule']) {
          expect(text).not.toContain(logicalId);
        }
        expect(key.DependsOn).toBeUndefined();
      });

      it('lets exactly the publishers the topic policy allows use the key, with the two actions SNS requires', () => {
        const topicPolicy = new Evaluation(template).resolve(resource('RotationAlertsTopicPolicy').Properties) as JsonObject;
        const publishers = policyStatements(topicPolicy)
          .filter((statement) => asList(statement.Action).includes('sns:Publish'))
          .map((statement) => JSON.stringify(statement.Principal))
          .sort();
        const keyUsers = keyPolicy().filter((statement) => JSON.stringify(statement.Principal).includes('Service'));

        expect(keyUsers.map((statement) => JSON.stringify(statement.Principal)).sort()).toEqual(publishers);
        for (const statement of keyUsers) {
          expect(statement.Effect).toBe('Allow');
          expect([...asList(statement.Action)].sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
        }
      });

      it('outputs the key in use, the stack\'s own or the given one', () => {
        const output = template.Outputs.RotationAlertsKeyArn;

        expect(output).toBeDefined();
        expect(new Evaluation(template).resolve(output?.Value ?? null)).toBe(STACK_ALERTS_KEY);
        expect(new Evaluation(template, { AlertsKmsKeyArn: OWN_ALERTS_KEY }).resolve(output?.Value ?? null)).toBe(OWN_ALERTS_KEY);
      });
    });
  });

  it('outputs the function, role, credentials secret, state table, topic and its key', () => {
    const evaluation = new Evaluation(template);
    const outputs = Object.fromEntries(
      Object.entries(template.Outputs).map(([key, output]) => [key, evaluation.resolve(output.Value)]),
    );

    expect(outputs).toMatchObject({
      RotationFunctionArn: FUNCTION_ARN,
      RotationFunctionRoleArn: ROLE_ARN,
      StytchCredentialsSecretArn: CREDENTIALS_SECRET,
      RotationAlertsTopicArn: TOPIC_ARN,
      RotationAlertsKeyArn: STACK_ALERTS_KEY,
      RotationStateTableName: TABLE_NAME,
      RotationStateTableArn: TABLE_ARN,
    });
  });

  describe('IAM policy documents (docs/iam)', () => {
    it('grants the function exactly the AWS calls its code makes (besides the platform\'s logs, KMS and VPC calls)', async () => {
      // Prepare
      const calls = await awsActionsOf('functions/rotate-stytch-secret/index.ts');

      // Act: the role with every option on, less what Lambda and Secrets Manager use
      // on the function's behalf (logs, network interfaces, KMS via Secrets Manager).
      const granted = [...grantedActions({ Statement: rolePolicy(new Evaluation(template)) })].filter(
        (action) => !/^(logs|ec2|kms):/.test(action),
      );

      // Assess
      expect(calls.length).toBeGreaterThan(0);
      expect(granted.sort()).toEqual(calls);
    });

    it('lets an operator make every call the CLI can make, and start a rotation with this function', async () => {
      // Prepare
      const policy = readPolicy('operator-policy.json');
      const calls = await awsActionsOf('cli/main.ts');

      // Act
      const granted = grantedActions(policy);

      // Assess: rotate-secret also needs lambda:InvokeFunction on the rotation function.
      expect(policy.Version).toBe('2012-10-17');
      expect(calls).toContain('secretsmanager:RotateSecret');
      expect(calls.filter((action) => !granted.has(action))).toEqual([]);
      expect(granted.has('lambda:InvokeFunction')).toBe(true);
      for (const statement of policy.Statement) {
        for (const action of asList(statement.Action)) expect(action).not.toContain('*');
      }
    });

    it('lets an operator read, and only read, the management key secret docs/deploy.md creates, for the status of a project secret', () => {
      // Prepare: the name docs/deploy.md gives the secret, with a random suffix.
      const policy = readPolicy('operator-policy.json');
      const name = /aws secretsmanager create-secret --name (\S+)/.exec(readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8'))?.[1];
      const arn = `arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:${name ?? '(no create-secret in docs/deploy.md)'}-AbCdEf`;

      // Act: its own statement, so that narrowing the rotated secrets' statement keeps it.
      const statement = policy.Statement.find((candidate) => candidate.Sid === 'ReadStytchManagementKeyForProjectSecretStatus');

      // Assess
      expect(name).toBe('stytch/management-credentials');
      expect(statement?.Effect).toBe('Allow');
      expect(asList(statement?.Action ?? [])).toEqual(['secretsmanager:GetSecretValue']);
      expect(asList(statement?.Resource ?? []).some((pattern) => arnMatches(pattern, arn))).toBe(true);
      expect(asList(statement?.Resource ?? []).some((pattern) => arnMatches(pattern, 'arn:aws:secretsmanager:REGION:ACCOUNT_ID:secret:prod/billing/stytch-client-AbCdEf'))).toBe(false);
    });

    it('lets a deployer create, update and remove every resource type of the stack', () => {
      // Prepare: the resource types of the stack with every option on.
      const policy = readPolicy('deployer-policy.json');
      const types = [...new Set(Object.values(template.Resources).map((resource) => resource.Type))].sort();

      // Act
      const granted = grantedActions(policy);
      const unknown = types.filter((type) => !DEPLOYER_ACTIONS_BY_TYPE[type]);
      const missing = [...types.flatMap((type) => DEPLOYER_ACTIONS_BY_TYPE[type] ?? []), ...DEPLOYER_CLOUDFORMATION].filter(
        (action) => !granted.has(action),
      );

      // Assess
      expect(policy.Version).toBe('2012-10-17');
      expect(unknown, 'resource types with no deployer actions listed').toEqual([]);
      expect([...new Set(missing)], 'actions the deployer policy lacks').toEqual([]);
      for (const statement of policy.Statement) {
        for (const action of asList(statement.Action)) expect(action, statement.Sid).not.toContain('*');
      }
    });
  });

  it('passes cfn-lint without errors or warnings, with every option on, off, and each alone', async (ctx) => {
    // Prepare
    const cfnLint = await findCfnLint();
    if (!cfnLint) {
      if (process.env.CI) throw new Error('cfn-lint is required on CI (pip install cfn-lint) but was not found');
      console.warn('SKIPPED cfn-lint check: cfn-lint not found on PATH or in pyenv shims (pip install cfn-lint)');
      return ctx.skip('cfn-lint not installed (pip install cfn-lint); required when CI is set');
    }
    // The packaged templates, and variants of the first with other parameter defaults:
    // cfn-lint reads the defaults when it checks values and conditions.
    const off = Object.fromEntries(Object.entries(defaults.Parameters).map(([name, spec]) => [name, spec.Default ?? '']));
    const variants: Record<string, Record<string, string | number>> = {
      'existing-credentials-explicit-list': { ...off, ExistingCredentialsSecretArn: RETAINED_CREDENTIALS, RotatedSecretArns: ROTATED_1 },
      'management-key-narrowed-by-tag': { ...off, ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS, RotatedSecretTagValue: 'stytch-prod' },
      'management-key-existing-and-extra-credentials': {
        ...off,
        ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS,
        ExistingCredentialsSecretArn: RETAINED_CREDENTIALS,
        ExtraCredentialsSecretArns: OTHER_CREDENTIALS,
      },
      'extra-kms-keys-only': { ...off, ExtraKmsKeyArns: `${KMS_KEY},${EXTRA_KMS_KEY}` },
      'vpc-only': { ...off, SubnetIds: SUBNETS, SecurityGroupIds: SECURITY_GROUP },
      'tag-and-example': { ...off, RotatedSecretTagValue: 'stytch-prod', CreateExampleSecret: 'true' },
      'reserved-and-boundary': { ...off, ReservedConcurrency: '10', PermissionsBoundaryArn: BOUNDARY },
      'existing-alerts-topic-and-email': { ...off, AlertsTopicArn: EXISTING_TOPIC, AlarmEmail: 'rotation-alerts@example.com' },
    };
    const files = [
      join(packageDir, 'cloudformation-template-update-stack.json'),
      join(defaultsDir, 'cloudformation-template-update-stack.json'),
    ];
    for (const [name, values] of Object.entries(variants)) {
      const variant = structuredClone(template);
      for (const [parameter, value] of Object.entries(values)) {
        const spec = variant.Parameters[parameter];
        if (!spec) throw new Error(`no parameter ${parameter}`);
        spec.Default = value;
      }
      new Evaluation(variant); // the values are valid for the parameters (throws if not)
      const file = join(packageDir, `variant-${name}.json`);
      writeFileSync(file, JSON.stringify(variant));
      files.push(file);
    }

    // Act: exit status 0 = clean; JSON output names any finding. Warnings we accept
    // are ignored in the template itself, with the reason (infra/function.yml).
    const result = await run(cfnLint, ['--format', 'json', '--', ...files]).catch((error: { stdout?: string }) => ({
      stdout: error.stdout ?? '',
    }));

    // Assess
    const findings = JSON.parse(result.stdout || '[]') as { Rule: { Id: string }; Message: string; Filename: string }[];
    expect(findings.map((finding) => `${finding.Filename}: ${finding.Rule.Id} ${finding.Message}`)).toEqual([]);
  }, 120_000);
});
