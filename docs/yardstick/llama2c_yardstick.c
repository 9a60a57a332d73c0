// BENCHMARK YARDSTICK ONLY (not part of Pargs): a llama2.c-style (run.c) forward at the stories110M shape with
// random weights and greedy argmax, to measure "a straightforward C implementation" on the same machine at the
// same moment as `pargs bench generate`. Build: gcc -Ofast -march=native -fopenmp llama2c_yardstick.c -o yard -lm
// Run: OMP_NUM_THREADS=1 ./yard 60   (prints ms/step and tok/s over 60 steps after 3 warm-up steps)
// llama2.c-style forward (run.c's matmul/rmsnorm/rope/attention/swiglu), random weights, greedy argmax.
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <omp.h>
static float* rnd(size_t n){float*p=malloc(n*4);for(size_t i=0;i<n;i++)p[i]=((float)rand()/RAND_MAX-0.5f)*0.05f;return p;}
static void rmsnorm(float*o,float*x,float*w,int n){float ss=0;for(int j=0;j<n;j++)ss+=x[j]*x[j];ss=1.0f/sqrtf(ss/n+1e-5f);for(int j=0;j<n;j++)o[j]=w[j]*ss*x[j];}
static void softmax(float*x,int n){float m=x[0];for(int i=1;i<n;i++)if(x[i]>m)m=x[i];float s=0;for(int i=0;i<n;i++){x[i]=expf(x[i]-m);s+=x[i];}for(int i=0;i<n;i++)x[i]/=s;}
static void matmul(float*xout,float*x,float*w,int n,int d){int i;
#pragma omp parallel for private(i)
 for(i=0;i<d;i++){float v=0;for(int j=0;j<n;j++)v+=w[i*n+j]*x[j];xout[i]=v;}}
int main(int argc,char**argv){
 int dim=768,L=12,H=12,hid=2048,V=32000,S=1024,hs=dim/H; int steps=argc>1?atoi(argv[1]):100;
 float*emb=rnd((size_t)V*dim);float*rms_att=rnd((size_t)L*dim),*rms_ffn=rnd((size_t)L*dim),*rms_f=rnd(dim);
 float*wq=rnd((size_t)L*dim*dim),*wk=rnd((size_t)L*dim*dim),*wv=rnd((size_t)L*dim*dim),*wo=rnd((size_t)L*dim*dim);
 float*w1=rnd((size_t)L*hid*dim),*w2=rnd((size_t)L*hid*dim),*w3=rnd((size_t)L*hid*dim);
 float*x=calloc(dim,4),*xb=calloc(dim,4),*xb2=calloc(dim,4),*hb=calloc(hid,4),*hb2=calloc(hid,4),*q=calloc(dim,4),*att=calloc(H*S,4),*logits=calloc(V,4);
 float*kc=calloc((size_t)L*S*dim,4),*vc=calloc((size_t)L*S*dim,4);
 int tok=1; struct timespec a,b; double t0=0;
 for(int pos=0;pos<steps+3;pos++){
  if(pos==3)clock_gettime(CLOCK_MONOTONIC,&a);
  memcpy(x,emb+(size_t)tok*dim,dim*4);
  for(int l=0;l<L;l++){
   rmsnorm(xb,x,rms_att+l*dim,dim);
   float*k=kc+(size_t)l*S*dim+pos*dim,*v=vc+(size_t)l*S*dim+pos*dim;
   matmul(q,xb,wq+(size_t)l*dim*dim,dim,dim);matmul(k,xb,wk+(size_t)l*dim*dim,dim,dim);matmul(v,xb,wv+(size_t)l*dim*dim,dim,dim);
   for(int i=0;i<dim;i+=2){int hd=i%hs;float f=1.0f/powf(10000.0f,hd/(float)hs);float val=pos*f,fcr=cosf(val),fci=sinf(val);
    for(int r=0;r<2;r++){float*vec=r==0?q:k;float v0=vec[i],v1=vec[i+1];vec[i]=v0*fcr-v1*fci;vec[i+1]=v0*fci+v1*fcr;}}
   int h;
   #pragma omp parallel for private(h)
   for(h=0;h<H;h++){float*qh=q+h*hs;float*at=att+h*S;
    for(int t=0;t<=pos;t++){float*kk=kc+(size_t)l*S*dim+t*dim+h*hs;float s=0;for(int i=0;i<hs;i++)s+=qh[i]*kk[i];at[t]=s/sqrtf(hs);}
    softmax(at,pos+1);float*o=xb+h*hs;memset(o,0,hs*4);
    for(int t=0;t<=pos;t++){float*vv=vc+(size_t)l*S*dim+t*dim+h*hs;for(int i=0;i<hs;i++)o[i]+=at[t]*vv[i];}}
   matmul(xb2,xb,wo+(size_t)l*dim*dim,dim,dim);for(int i=0;i<dim;i++)x[i]+=xb2[i];
   rmsnorm(xb,x,rms_ffn+l*dim,dim);
   matmul(hb,xb,w1+(size_t)l*dim*hid,dim,hid);matmul(hb2,xb,w3+(size_t)l*dim*hid,dim,hid);
   for(int i=0;i<hid;i++){float v=hb[i];v*=1.0f/(1.0f+expf(-v));hb[i]=v*hb2[i];}
   matmul(xb,hb,w2+(size_t)l*dim*hid,hid,dim);for(int i=0;i<dim;i++)x[i]+=xb[i];
  }
  rmsnorm(x,x,rms_f,dim);matmul(logits,x,emb,dim,V);
  int best=0;for(int i=1;i<V;i++)if(logits[i]>logits[best])best=i;tok=best;
 }
 clock_gettime(CLOCK_MONOTONIC,&b);double s=(b.tv_sec-a.tv_sec)+(b.tv_nsec-a.tv_nsec)*1e-9;
 printf("threads=%d steps=%d %.2f ms/step %.1f tok/s\n",omp_get_max_threads(),steps,s*1000/steps,steps/s);
}
