import { describe, expect, it } from '@jest/globals';
import { imageVersionWarning } from '../../../src/configFlag.js';

describe('imageVersionWarning', () => {
  it('is silent for an image tagged with this version, and for one pinned by digest', () => {
    expect(imageVersionWarning('ghcr.io/zkleader/zkleader:v1.2.3', '1.2.3')).toBeUndefined();
    expect(imageVersionWarning('registry.example:5000/mirror/zkleader:v1.2.3', '1.2.3')).toBeUndefined();
    expect(imageVersionWarning('ghcr.io/zkleader/zkleader@sha256:abc', '1.2.3')).toBeUndefined();
  });

  it.each(['ghcr.io/zkleader/zkleader:v0.1.0', 'ghcr.io/zkleader/zkleader', 'registry.example:5000/zkleader', 'zkleader:latest'])('names %s when its tag is not v1.2.3', (image) => {
    expect(imageVersionWarning(image, '1.2.3')).toMatch(new RegExp(`^the injected sidecar image ${image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not tagged v1\\.2\\.3`));
  });
});
