import { describe, expect, it } from '@jest/globals';
import { candidatePrefix, electionOrder, parseCandidateNode } from '../../../zookeeper/candidateNode.js';
import { parseCandidateData } from '../../../zookeeper/electionSnapshot.js';

describe('candidate nodes', () => {
  it('parses <uuid>-n_<10-digit sequence>', () => {
    const uuid = '0cfa0fd4-421f-4a9e-a6f4-fb0dddb00306';
    expect(parseCandidateNode(`${candidatePrefix(uuid)}0000000042`)).toEqual({ name: `${uuid}-n_0000000042`, uuid, sequence: 42 });
    expect(parseCandidateNode('lock-0000000001')).toBeNull();
    expect(parseCandidateNode('x-n_42')).toBeNull();
  });

  it('orders by sequence, not by name, and skips foreign nodes', () => {
    const order = electionOrder(['b-n_0000000010', 'foreign', 'a-n_0000000011', 'c-n_0000000002']);
    expect(order.map((c) => c.name)).toEqual(['c-n_0000000002', 'b-n_0000000010', 'a-n_0000000011']);
  });
});

describe('candidate data', () => {
  it('reads {pod, uid, ip} and shows damaged data as the node name; a member without a cluster is cluster ""', () => {
    expect(parseCandidateData(Buffer.from('{"pod":"p","uid":"u","ip":"10.0.0.1","namespace":"n","startedAt":"x"}'), 'node')).toEqual({
      pod: 'p',
      uid: 'u',
      ip: '10.0.0.1',
      cluster: '',
    });
    expect(parseCandidateData(Buffer.from('{"pod":"p"}'), 'node')).toEqual({ pod: 'p', uid: null, ip: null, cluster: '' });
    expect(parseCandidateData(Buffer.from('not json'), 'node-1')).toEqual({ pod: 'node-1', uid: null, ip: null, cluster: '' });
  });

  it('reads the cluster of a member that has one, and ignores one that is not a string', () => {
    const data = '{"pod":"p","uid":"u","ip":"10.0.0.1","namespace":"n","startedAt":"x","cluster":"east"}';
    expect(parseCandidateData(Buffer.from(data), 'node')).toEqual({ pod: 'p', uid: 'u', ip: '10.0.0.1', cluster: 'east' });
    expect(parseCandidateData(Buffer.from('{"pod":"p","cluster":7}'), 'node').cluster).toBe('');
  });
});
