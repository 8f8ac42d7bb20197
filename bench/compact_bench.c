/*
 * compact_bench.c -- what a compaction costs and does to recall.
 * Builds an HNSW collection of N random 128-d vectors (m=16,
 * ef_construction=64, 2 threads), deletes every 4th point, then prints the
 * build, delete and compaction (including its checkpoint) times and
 * recall@10 at ef 128 against exact search (200 queries) before and after.
 * usage: compact_bench [N=50000]   (DIR /var/tmp/compact-bench-db)
 * build and run: bench/compact_bench.sh [N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "needle.h"
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void recall(ndl_collection*c,float*v,uint32_t n,uint32_t d,const char*when);
int main(int argc,char**argv){
  uint32_t n=argc>1?atoi(argv[1]):200000, d=128;
  system("rm -rf /var/tmp/compact-bench-db");
  ndl_db_options o;ndl_db_options_init(&o);o.fsync=NDL_FSYNC_NONE;o.checkpoint_interval_ms=0;o.checkpoint_wal_bytes=0;
  ndl_db*db;ndl_error e;ndl_db_open("/var/tmp/compact-bench-db",&o,&db,&e);
  ndl_collection_config cfg;ndl_collection_config_init(&cfg);cfg.dimension=d;cfg.hnsw_ef_construction=64;
  ndl_collection*c;ndl_collection_create(db,"c",&cfg,&c,&e);
  float*v=malloc((size_t)n*d*4);ndl_id*ids=malloc(n*sizeof*ids);srand(1);
  for(size_t i=0;i<(size_t)n*d;i++)v[i]=rand()/(float)RAND_MAX;
  for(uint32_t i=0;i<n;i++)ids[i]=ndl_id_u64(i);
  ndl_write_options w;ndl_write_options_init(&w);w.threads=2;
  double t0=now();ndl_collection_upsert(c,n,ids,v,&w,&e);printf("build %.1f s\n",now()-t0);
  uint32_t k=0;for(uint32_t i=0;i<n;i+=4)ids[k++]=ndl_id_u64(i);
  t0=now();ndl_collection_delete(c,k,ids,NULL,&e);printf("delete %u: %.2f s\n",k,now()-t0);
  recall(c,v,n,d,"before compaction");
  t0=now();ndl_status rc=ndl_collection_compact(c,&e);printf("compact (+flush) rc %d: %.2f s\n",rc,now()-t0);
  recall(c,v,n,d,"after compaction");
  ndl_db_close(db,NULL);return 0;}
static void recall(ndl_collection*c,float*v,uint32_t n,uint32_t d,const char*when){
  srand(7);
  ndl_search_params p;ndl_search_params_init(&p);p.k=10;p.ef=128;
  ndl_search_params x=p;x.exact=1;double hit=0;
  for(int q=0;q<200;q++){float*qv=v+(size_t)(rand()%n)*d;ndl_results*a,*b;ndl_collection_search(c,qv,&p,&a,NULL);ndl_collection_search(c,qv,&x,&b,NULL);
    for(size_t i=0;i<ndl_results_count(b,0);i++)for(size_t j=0;j<ndl_results_count(a,0);j++)if(ndl_results_hits(a,0)[j].distance==ndl_results_hits(b,0)[i].distance){hit++;break;}
    ndl_results_free(a);ndl_results_free(b);}
  printf("recall@10 ef128 %s %.3f\n",when,hit/2000);}
