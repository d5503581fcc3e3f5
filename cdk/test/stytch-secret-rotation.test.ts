// The CDK construct: what it synthesizes (aws-cdk-lib/assertions), an example app
// synthesized offline and linted, and the role of all three install paths compared
// for the same inputs. Its assets are generated from serverless.yml first
// (`npm run package:sar -- --cdk-only`), so the construct tested is the current one.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template as Assertions } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Evaluation, findCfnLint, policyStatements, type Statement, type Template } from '../../test/helpers/cfn.js';
import {
  BOUNDARY,
  EXISTING_CREDENTIALS,
  EXTRA_KMS_KEY,
  ensureBundle,
  FUNCTION_NAME,
  findSamTranslator,
  KMS_KEY,
  OTHER_CREDENTIALS,
  packageInstallPaths,
  packageServerless,
  ROOT,
  SECURITY_GROUP,
  SUBNETS,
  translateSam,
  WORLD,
} from '../../test/helpers/install-paths.js';
import { toolGate } from '../../test/helpers/moto.js';
import { StytchSecretRotation, type StytchSecretRotationProps } from '../lib/index.js';

const run = promisify(execFile);
const python = await findSamTranslator();
const gate = toolGate('aws-sam-translator (python -c "import samtranslator")', python);

const ENV = { account: '123456789012', region: 'us-east-1' };
// The secret of the workspace management key (managementCredentialsSecret).
const MANAGEMENT_CREDENTIALS = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:stytch/management-credentials-MgKyAb';

/** A stack with the construct; `configure` gets the stack to make props from. */
function synth(configure: (stack: Stack) => Partial<StytchSecretRotationProps> = () => ({}), attach?: (rotation: StytchSecretRotation, stack: Stack) => void) {
  const app = new App();
  const stack = new Stack(app, 'Rotation', { env: ENV });
  const rotation = new StytchSecretRotation(stack, 'StytchRotation', {
    credentialsSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Credentials', EXISTING_CREDENTIALS),
    functionName: FUNCTION_NAME,
    ...configure(stack),
  });
  attach?.(rotation, stack);
  return { stack, rotation, template: Assertions.fromStack(stack) };
}

const roleStatements = (template: Template, parameters: Record<string, string>): Statement[] =>
  policyStatements(new Evaluation(template, parameters, WORLD).resolve(template.Resources.RotateStytchSecretRole?.Properties.Policies ?? null));

beforeAll(async () => {
  await ensureBundle();
  await run(process.execPath, [join(ROOT, 'scripts/package-sar.mjs'), '--cdk-only', '--skip-build'], { cwd: ROOT });
}, 120_000);

describe('Construct: StytchSecretRotation', () => {
  it('creates the function from the prebuilt zip, its role, table, sweep, alerts topic and alarm', () => {
    // Act
    const { template } = synth(() => ({ previousSecretGracePeriod: Duration.hours(2) }));

    // Assess
    template.resourceCountIs('AWS::Lambda::Function', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: FUNCTION_NAME,
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Handler: 'dist/rotate-stytch-secret/index.handler',
      MemorySize: 256,
      Timeout: 60,
      // A file asset: the zip as it is, no bundling at synth time.
      Code: { S3Bucket: Match.anyValue(), S3Key: Match.stringLikeRegexp('^[0-9a-f]{64}\\.zip$') },
      Environment: {
        Variables: Match.objectLike({ STYTCH_CREDENTIALS_SECRET_ID: EXISTING_CREDENTIALS, PREVIOUS_SECRET_GRACE_SECONDS: '7200', ROTATION_STATE_TABLE: { Ref: 'RotationStateTable' } }),
      },
    });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', Properties: Match.objectLike({ BillingMode: 'PAY_PER_REQUEST', DeletionProtectionEnabled: true }) });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)' });
    template.hasResourceProperties('AWS::Lambda::Permission', { Principal: 'secretsmanager.amazonaws.com', SourceAccount: { Ref: 'AWS::AccountId' } });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: `${FUNCTION_NAME}-errors` });
    template.resourceCountIs('AWS::SNS::Topic', 1);
    // The credentials secret is the given one; the example secret is never made.
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    // Decided at synth time: no condition and no parameter of the template is left.
    const json = template.toJSON() as { Conditions?: object; Parameters?: Record<string, unknown>; Outputs?: object };
    expect(json.Conditions).toBeUndefined();
    expect(Object.keys(json.Parameters ?? {})).toEqual(['BootstrapVersion']);
    expect(json.Outputs).toBeUndefined();
  });

  it('exposes the function and role ARNs', () => {
    // Act
    const { stack, rotation } = synth();

    // Assess
    expect(stack.resolve(rotation.functionArn)).toEqual({ 'Fn::GetAtt': ['RotateStytchSecretLambdaFunction', 'Arn'] });
    expect(stack.resolve(rotation.role.roleArn)).toEqual({ 'Fn::GetAtt': ['RotateStytchSecretRole', 'Arn'] });
  });

  describe('Method: addRotatedSecret', () => {
    it('schedules rotation every 30 days without rotating on each deploy, after Secrets Manager may invoke', () => {
      // Act
      const { template } = synth(undefined, (rotation, stack) => rotation.addRotatedSecret(new secretsmanager.Secret(stack, 'Client')));

      // Assess
      template.hasResource('AWS::SecretsManager::RotationSchedule', {
        DependsOn: Match.arrayWith(['RotateStytchSecretInvokePermission']),
        Properties: {
          SecretId: { Ref: Match.stringLikeRegexp('^Client') },
          RotationLambdaARN: { 'Fn::GetAtt': ['RotateStytchSecretLambdaFunction', 'Arn'] },
          RotationRules: { ScheduleExpression: 'rate(30 days)' },
          RotateImmediatelyOnUpdate: false,
        },
      });
    });

    it('rotates on update only when asked, with the given schedule and window', () => {
      // Act
      const { template } = synth(undefined, (rotation, stack) =>
        rotation.addRotatedSecret(new secretsmanager.Secret(stack, 'Client'), { schedule: Duration.days(7), window: Duration.hours(3), rotateImmediatelyOnUpdate: true }),
      );

      // Assess
      template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        RotationRules: { ScheduleExpression: 'rate(7 days)', Duration: '3h' },
        RotateImmediatelyOnUpdate: true,
      });
    });

    it('adds nothing to the role or the function\'s permissions: the template\'s statements already cover it', () => {
      // Prepare
      const before = synth().template;

      // Act
      const { template } = synth(undefined, (rotation, stack) => rotation.addRotatedSecret(new secretsmanager.Secret(stack, 'Client')));

      // Assess
      template.resourceCountIs('AWS::IAM::Policy', 0);
      template.resourceCountIs('AWS::Lambda::Permission', 2);
      expect(template.findResources('AWS::IAM::Role')).toEqual(before.findResources('AWS::IAM::Role'));
    });

    it('refuses a secret whose KMS key the function may not use, naming the fix', () => {
      // Act / Assess
      expect(() =>
        synth(undefined, (rotation, stack) => {
          const key = new kms.Key(stack, 'ClientKey');
          rotation.addRotatedSecret(new secretsmanager.Secret(stack, 'Client', { encryptionKey: key }));
        }),
      ).toThrow(/Client is encrypted with .*ClientKey, which the rotation function may not use: pass it in kmsKeys/);
    });
  });

  describe('Prop: managementCredentialsSecret', () => {
    // As CloudFormation resolves them (the template keeps Fn::Split, Fn::Join and Fn::Sub).
    const statementsOf = (template: Assertions) => roleStatements(template.toJSON() as Template, {});
    const credentials = (stack: Stack) => stack.node.findChild('Credentials') as secretsmanager.ISecret;

    it('lets the function read the management key, and rotate the credentials secrets, only when given', () => {
      // Act
      const { template } = synth((stack) => ({
        managementCredentialsSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Management', MANAGEMENT_CREDENTIALS),
        extraCredentialsSecrets: [secretsmanager.Secret.fromSecretCompleteArn(stack, 'Other', OTHER_CREDENTIALS)],
      }));
      const without = synth().template;

      // Assess
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: { Variables: Match.objectLike({ STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID: MANAGEMENT_CREDENTIALS }) },
      });
      const bySid = new Map(statementsOf(template).map((statement) => [statement.Sid, statement]));
      expect(bySid.get('ReadStytchManagementCredentials')).toEqual({
        Sid: 'ReadStytchManagementCredentials',
        Effect: 'Allow',
        Action: 'secretsmanager:GetSecretValue',
        Resource: MANAGEMENT_CREDENTIALS,
      });
      expect(bySid.get('RotateStytchProjectSecrets')).toMatchObject({
        Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecretVersionStage'],
        Resource: [EXISTING_CREDENTIALS, OTHER_CREDENTIALS],
        Condition: { StringEquals: { 'secretsmanager:resource/AllowRotationLambdaArn': `arn:aws:lambda:us-east-1:123456789012:function:${FUNCTION_NAME}` } },
      });
      const withoutSids = statementsOf(without).map((statement) => statement.Sid);
      expect(withoutSids).not.toContain('ReadStytchManagementCredentials');
      expect(withoutSids).not.toContain('RotateStytchProjectSecrets');
      const variables = Object.values(without.findResources('AWS::Lambda::Function')).map(
        (fn) => (fn as { Properties: { Environment: { Variables: Record<string, unknown> } } }).Properties.Environment.Variables,
      );
      expect(variables).toHaveLength(1);
      expect(variables[0]).not.toHaveProperty('STYTCH_MANAGEMENT_CREDENTIALS_SECRET_ID');
    });

    it('allows the management key secret\'s own KMS key', () => {
      // Act: a key made in the same app (a deploy-time ARN).
      const { template } = synth((stack) => ({
        managementCredentialsSecret: new secretsmanager.Secret(stack, 'Management', { encryptionKey: new kms.Key(stack, 'ManagementKey') }),
      }));

      // Assess
      template.hasResourceProperties('AWS::IAM::Role', {
        Policies: [
          {
            PolicyDocument: {
              Statement: Match.arrayWith([
                Match.objectLike({ Sid: 'ReadStytchManagementCredentials', Resource: { Ref: Match.stringLikeRegexp('^Management') } }),
                Match.objectLike({ Sid: 'UseSecretsKeysViaSecretsManager', Resource: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^ManagementKey'), 'Arn'] }] }),
              ]),
            },
          },
        ],
      });
    });

    it('schedules the rotation of the credentials secret itself with a management key, and refuses it without one', () => {
      // Act
      const { template } = synth(
        (stack) => ({ managementCredentialsSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Management', MANAGEMENT_CREDENTIALS) }),
        (rotation, stack) => rotation.addRotatedSecret(credentials(stack)),
      );

      // Assess
      template.hasResourceProperties('AWS::SecretsManager::RotationSchedule', {
        SecretId: EXISTING_CREDENTIALS,
        RotationLambdaARN: { 'Fn::GetAtt': ['RotateStytchSecretLambdaFunction', 'Arn'] },
      });
      expect(() => synth(undefined, (rotation, stack) => rotation.addRotatedSecret(credentials(stack)))).toThrow(
        /Credentials is a credentials secret; rotating its project secret needs the workspace management key: pass managementCredentialsSecret/,
      );
      // The same secret imported a second time is still the credentials secret.
      expect(() =>
        synth(undefined, (rotation, stack) => rotation.addRotatedSecret(secretsmanager.Secret.fromSecretCompleteArn(stack, 'Again', EXISTING_CREDENTIALS))),
      ).toThrow(/pass managementCredentialsSecret/);
    });
  });

  describe('Prop: alarmTopic', () => {
    it('sends alerts to the given topic, letting only the rule and the alarm publish, and creates no topic of its own', () => {
      // Act
      const { template } = synth((stack) => ({ alarmTopic: new sns.Topic(stack, 'PlatformAlerts', { masterKey: new kms.Key(stack, 'AlertsKey') }), alarmEmail: 'oncall@example.com' }));

      // Assess
      const topic = { Ref: Match.stringLikeRegexp('^PlatformAlerts') };
      template.resourceCountIs('AWS::SNS::Topic', 1);
      expect(Object.keys(template.findResources('AWS::SNS::Topic'))[0]).toMatch(/^PlatformAlerts/);
      expect(template.findResources('AWS::KMS::Key', { Properties: { Description: Match.stringLikeRegexp('alerts topic') } })).toEqual({});
      template.hasResourceProperties('AWS::Events::Rule', { Targets: [{ Id: 'rotation-alerts-topic', Arn: topic }] });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmActions: [topic] });
      template.hasResourceProperties('AWS::SNS::Subscription', { TopicArn: topic, Endpoint: 'oncall@example.com' });
      template.resourceCountIs('AWS::SNS::TopicPolicy', 1);
      template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        PolicyDocument: {
          Statement: [
            Match.objectLike({ Principal: { Service: 'events.amazonaws.com' }, Action: 'sns:Publish', Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': ['RotationFailureRule', 'Arn'] } } } }),
            Match.objectLike({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish', Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': ['RotateStytchSecretErrorsAlarm', 'Arn'] } } } }),
          ],
        },
      });
      template.hasResourceProperties('AWS::KMS::Key', {
        KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Action: ['kms:GenerateDataKey*', 'kms:Decrypt'], Principal: { Service: ['events.amazonaws.com', 'cloudwatch.amazonaws.com'] } })]) },
      });
    });

    it('warns that an imported topic\'s owner must let the rule and the alarm publish', () => {
      // Act
      const { stack } = synth((scope) => ({ alarmTopic: sns.Topic.fromTopicArn(scope, 'Imported', 'arn:aws:sns:us-east-1:123456789012:platform-alerts') }));

      // Assess
      Annotations.fromStack(stack).hasWarning('*', Match.stringLikeRegexp('alarmTopic .* is imported: its policy must let events.amazonaws.com'));
      Assertions.fromStack(stack).resourceCountIs('AWS::SNS::TopicPolicy', 0);
    });
  });

  describe('props', () => {
    it.each<[string, (stack: Stack) => Partial<StytchSecretRotationProps>, RegExp]>([
      [
        'a credentials secret imported by name (IAM needs its complete ARN)',
        (stack) => ({ credentialsSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'ByName', 'stytch/credentials') }),
        /credentialsSecret .* has no complete ARN .* import it with Secret.fromSecretCompleteArn/,
      ],
      [
        'a management key secret imported by name',
        (stack) => ({ managementCredentialsSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'ManagementByName', 'stytch/management-credentials') }),
        /managementCredentialsSecret .* has no complete ARN .* import it with Secret.fromSecretCompleteArn/,
      ],
      [
        'the credentials secret as the management key secret',
        (stack) => ({ managementCredentialsSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Same', EXISTING_CREDENTIALS) }),
        /managementCredentialsSecret .*Same is also a credentials secret; keep the workspace management key in a secret of its own/,
      ],
      ['an overlap window over 7 days', () => ({ previousSecretGracePeriod: Duration.days(8) }), /previousSecretGracePeriod must be whole seconds from 0 to 7 days/],
      ['a reserved concurrency of 0', () => ({ reservedConcurrency: 0 }), /reservedConcurrency must be a whole number from 1 to 9999/],
      ['a function name with spaces', () => ({ functionName: 'my rotation' }), /functionName "my rotation" must be/],
      ['subnets without a VPC', () => ({ vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } }), /vpcSubnets and securityGroups need vpc/],
      ['a bad log level', () => ({ logLevel: 'LOUD' as never }), /"LOUD" is not a valid LogLevel/],
      [
        'a key for the alerts topic with a topic of its own',
        (stack) => ({ alarmTopic: new sns.Topic(stack, 'Alerts'), alertsKey: new kms.Key(stack, 'AlertsKey') }),
        /alertsKey encrypts the topic the construct creates; with alarmTopic, encrypt that topic yourself/,
      ],
    ])('refuses %s with a message saying what to do', (_name, props, message) => {
      // Act / Assess
      expect(() => synth(props)).toThrow(message);
    });

    it('refuses a second one in the same stack: one function rotates any number of secrets', () => {
      // Prepare
      const { stack } = synth();

      // Act / Assess
      expect(
        () => new StytchSecretRotation(stack, 'Another', { credentialsSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Other', OTHER_CREDENTIALS) }),
      ).toThrow(/already has one \(Rotation\/StytchRotation\)/);
    });

    it('allows the credentials secret\'s own key, and decides conditions on values known only at deploy time', () => {
      // Act: a secret, key, VPC and boundary made in the same app (deploy-time ARNs).
      const { template } = synth((stack) => {
        const key = new kms.Key(stack, 'CredentialsKey');
        return {
          credentialsSecret: new secretsmanager.Secret(stack, 'OwnCredentials', { encryptionKey: key }),
          vpc: new ec2.Vpc(stack, 'Vpc', { maxAzs: 2 }),
          permissionsBoundary: new iam.ManagedPolicy(stack, 'Boundary', { statements: [new iam.PolicyStatement({ actions: ['*'], resources: ['*'] })] }),
        };
      });

      // Assess
      template.hasResourceProperties('AWS::IAM::Role', {
        PermissionsBoundary: { Ref: Match.stringLikeRegexp('^Boundary') },
        Policies: [
          {
            PolicyName: 'rotate-stytch-client-secrets',
            PolicyDocument: {
              Version: '2012-10-17',
              Statement: Match.arrayWith([
                Match.objectLike({ Sid: 'ReadStytchProjectCredentials', Resource: [{ Ref: Match.stringLikeRegexp('^OwnCredentials') }] }),
                Match.objectLike({ Sid: 'UseSecretsKeysViaSecretsManager', Resource: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^CredentialsKey'), 'Arn'] }] }),
                Match.objectLike({ Sid: 'ManageVpcNetworkInterfaces' }),
              ]),
            },
          },
        ],
      });
      template.hasResourceProperties('AWS::Lambda::Function', {
        VpcConfig: { SubnetIds: [{ Ref: Match.stringLikeRegexp('^VpcPrivateSubnet1') }, { Ref: Match.stringLikeRegexp('^VpcPrivateSubnet2') }], SecurityGroupIds: [Match.anyValue()] },
      });
    });
  });
});

describe.skipIf(gate.skip)(gate.title('Install paths: serverless.yml, SAM and CDK give the same role'), () => {
  let osls: Template;
  let translated: Template;
  let workDirs: string[] = [];

  beforeAll(async () => {
    gate.assert();
    const [serverless, paths] = await Promise.all([packageServerless(), packageInstallPaths()]);
    osls = serverless.template;
    translated = await translateSam(python ?? '', JSON.parse(readFileSync(join(paths.sar, 'template.json'), 'utf8')) as Template);
    workDirs = [join(serverless.dir, '..'), join(paths.sar, '..')];
  }, 120_000);

  afterAll(() => {
    for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
  });

  it.each<[string, Record<string, string>, (stack: Stack) => Partial<StytchSecretRotationProps>]>([
    ['an existing credentials secret and nothing else', { ExistingCredentialsSecretArn: EXISTING_CREDENTIALS }, () => ({})],
    [
      'every option the construct takes',
      {
        ExistingCredentialsSecretArn: EXISTING_CREDENTIALS,
        ExtraCredentialsSecretArns: OTHER_CREDENTIALS,
        ManagementCredentialsSecretArn: MANAGEMENT_CREDENTIALS,
        KmsKeyArn: KMS_KEY,
        ExtraKmsKeyArns: EXTRA_KMS_KEY,
        SubnetIds: SUBNETS.join(','),
        SecurityGroupIds: SECURITY_GROUP,
        PermissionsBoundaryArn: BOUNDARY,
        RotatedSecretTagValue: 'stytch-prod',
        ReservedConcurrency: '10',
      },
      (stack) => ({
        extraCredentialsSecrets: [secretsmanager.Secret.fromSecretCompleteArn(stack, 'Other', OTHER_CREDENTIALS)],
        managementCredentialsSecret: secretsmanager.Secret.fromSecretCompleteArn(stack, 'Management', MANAGEMENT_CREDENTIALS),
        kmsKeys: [kms.Key.fromKeyArn(stack, 'Key', KMS_KEY), kms.Key.fromKeyArn(stack, 'ExtraKey', EXTRA_KMS_KEY)],
        vpc: ec2.Vpc.fromVpcAttributes(stack, 'Vpc', { vpcId: 'vpc-0123456789abcdef0', availabilityZones: ['us-east-1a', 'us-east-1b'], privateSubnetIds: SUBNETS }),
        securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(stack, 'Group', SECURITY_GROUP)],
        permissionsBoundary: iam.ManagedPolicy.fromManagedPolicyArn(stack, 'Boundary', BOUNDARY),
        rotatedSecretTagValue: 'stytch-prod',
        reservedConcurrency: 10,
      }),
    ],
  ])('with %s', (_name, parameters, props) => {
    // Act
    const cdk = synth(props).template.toJSON() as Template;
    const fromServerless = roleStatements(osls, parameters);
    const fromSam = roleStatements(translated, { ...parameters, FunctionName: FUNCTION_NAME });
    const fromCdk = roleStatements(cdk, {});
    const boundary = (template: Template, values: Record<string, string>) => {
      const resolved = new Evaluation(template, values, WORLD).resolve(template.Resources.RotateStytchSecretRole?.Properties.PermissionsBoundary ?? null);
      return typeof resolved === 'symbol' ? null : resolved; // AWS::NoValue: none
    };

    // Assess
    expect(fromServerless.map((statement) => statement.Sid)).toEqual(expect.arrayContaining(['RotateStytchClientSecrets', 'ReadStytchProjectCredentials', 'UseOwnStateTable', 'WriteOwnLogs']));
    // The management key's statements, in the case that gives one.
    expect(fromServerless.some((statement) => statement.Sid === 'ReadStytchManagementCredentials')).toBe('ManagementCredentialsSecretArn' in parameters);
    expect(fromSam).toEqual(fromServerless);
    expect(fromCdk).toEqual(fromServerless);
    expect(boundary(cdk, {})).toEqual(boundary(osls, parameters));
  });
});

describe.skipIf(gate.skip)('Example app (cdk/example)', () => {
  it('synthesizes offline into a template cfn-lint finds nothing in, with the zip as its asset', async () => {
    // Prepare
    gate.assert();
    const cfnLint = await findCfnLint();
    if (!cfnLint) throw new Error('cfn-lint is required (pip install cfn-lint)');
    const out = mkdtempSync(join(tmpdir(), 'stytch-rotation-cdk-out-'));

    // Act: the app as `cdk synth` runs it (the CLI runs the app with CDK_OUTDIR set).
    await run(process.execPath, ['--import', 'tsx', join(ROOT, 'cdk/example/app.ts')], { cwd: join(ROOT, 'cdk/example'), env: { ...process.env, CDK_OUTDIR: out } });
    const file = join(out, 'StytchSecretRotationExample.template.json');
    const result = await run(cfnLint, ['--format', 'json', '--', file]).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));

    // Assess
    const findings = JSON.parse(result.stdout || '[]') as { Rule: { Id: string }; Message: string }[];
    expect(findings.map((finding) => `${finding.Rule.Id} ${finding.Message}`)).toEqual([]);
    const zips = readdirSync(out).filter((name) => name.endsWith('.zip'));
    expect(zips).toHaveLength(1);
    expect(readFileSync(join(out, zips[0] ?? ''))).toEqual(readFileSync(join(ROOT, 'cdk/assets/rotateStytchSecret.zip')));
    expect(existsSync(join(out, 'manifest.json'))).toBe(true);
    rmSync(out, { recursive: true, force: true });
  }, 120_000);
});
